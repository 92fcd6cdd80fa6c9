import { describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../../../src/cli/run.js';
import { EXIT, exitForError } from '../../../src/cli/exit-codes.js';
import { ConfigError, WeftError } from '../../../src/errors.js';
import { validateConfig } from '../../../src/cli/commands/config.js';
import { CONFIG_SCHEMA, ERROR_SCHEMA, validate } from './schema.js';

function io(stdin = ''): CliIo & { err: string } {
  const o = {
    env: {},
    stdoutIsTty: false,
    stderrIsTty: false,
    err: '',
    writeErr: (t: string) => {
      o.err += t;
    },
    readStdin: async () => stdin,
  };
  return o;
}

describe('runCli (no etcd, no kernel)', () => {
  it('help and version exit 0', async () => {
    expect(await runCli([], io())).toMatchObject({
      exitCode: 0,
      stdout: expect.stringMatching(/^usage: weftctl/),
    });
    expect(await runCli(['doctor', '--help'], io())).toMatchObject({ exitCode: 0 });
    expect((await runCli(['version'], io())).stdout).toMatch(/^weftctl \d+\.\d+\.\d+/);
    expect(JSON.parse((await runCli(['version', '--json'], io())).stdout)).toMatchObject({
      ok: true,
    });
  });

  it('a usage error exits 2 with the message on stderr', async () => {
    const x = io();
    expect(await runCli(['status', '--etcd-endpoints=nope'], x)).toEqual({
      exitCode: 2,
      stdout: '',
    });
    expect(x.err).toMatch(/^weftctl: --etcd-endpoints: "nope" is not like http/);
  });

  it('a bad flag under --json still prints the JSON error document (exit 2)', async () => {
    for (const argv of [
      ['status', '--json', '--healthz-url=ftp://x'],
      ['doctor', '--no-such-flag', '-j'],
      ['leases', '--json=true', '--timeout=soon'],
    ]) {
      const r = await runCli(argv, io());
      expect(r.exitCode).toBe(2);
      const doc = JSON.parse(r.stdout) as unknown;
      expect(validate(doc, ERROR_SCHEMA)).toEqual([]);
      expect(doc).toMatchObject({ ok: false, error: { code: 'E_OPTION_INVALID' } });
    }
    const env = { ...io(), env: { WEFTCTL_JSON: 'true' } };
    expect(JSON.parse((await runCli(['status', '--bogus'], env)).stdout)).toMatchObject({
      ok: false,
    });
    expect((await runCli(['status', '--json=false', '--bogus'], io())).stdout).toBe('');
  });

  it('bad command arguments exit 2, with a JSON error document under --json', async () => {
    const x = io();
    const r = await runCli(['trace', '10.5.1.2', 'fd00::1', '--json'], x);
    expect(r.exitCode).toBe(2);
    const doc = JSON.parse(r.stdout) as unknown;
    expect(validate(doc, ERROR_SCHEMA)).toEqual([]);
    expect(doc).toMatchObject({ error: { code: 'E_OPTION_INVALID' } });
    expect(x.err).toMatch(/two addresses of one family/);
    expect((await runCli(['ping', 'not-an-ip'], io())).exitCode).toBe(2);
    expect((await runCli(['lease', 'steal', '10.5.1.0/24'], io())).exitCode).toBe(2);
    expect((await runCli(['lease', 'reserve', '10.5.1.7/24'], io())).exitCode).toBe(2);
    expect((await runCli(['config', 'frob'], io())).exitCode).toBe(2);
  });

  it('config validate checks an argument or stdin with weftd rules, without etcd', async () => {
    const ok = await runCli(
      [
        'config',
        'validate',
        '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":4096}}',
        '--json',
      ],
      io(),
    );
    expect(ok.exitCode).toBe(0);
    const doc = JSON.parse(ok.stdout) as Record<string, unknown>;
    expect(validate(doc, CONFIG_SCHEMA)).toEqual([]);
    expect(doc).toMatchObject({
      valid: true,
      config: { network: '10.5.0.0/16', subnetLen: 24, backend: 'vxlan' },
    });
    const bad = await runCli(
      ['config', 'validate', '-'],
      io('{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":"1"}}'),
    );
    expect(bad.exitCode).toBe(3);
    expect(bad.stdout).toMatch(/valid: +no: Backend\.VNI: "1" is invalid/);
  });

  it.each([
    ['{"Network":"10.5.0.0/16"}', true, /udp|vxlan/],
    ['{"Network":"10.5.0.0/33"}', false, /Network/],
    [
      '{"Network":"10.5.0.0/16","Backend":{"Type":"Directrouting"}}',
      false,
      /Backend\.Type "directrouting" is unknown/,
    ],
    ['{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","Directrouting":true}}', true, /vxlan/],
    ['{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","MTU":100}}', false, /MTU/],
    ['[1,2]', false, /JSON object/],
    ['{', false, /not valid JSON/],
    // IPv6 only: flannel's parser takes it (its Kubernetes mode), but weftd cannot lease with it
    // (etcd keys every lease by its IPv4 subnet) and stops with this error. Before, validate said
    // yes and `config set` wrote it.
    [
      '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd46::/48","Backend":{"Type":"vxlan"}}',
      false,
      /EnableIPv4 = false is invalid with etcd: flannel's etcd layout keys every lease by its IPv4 subnet/,
    ],
    [
      '{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd46::/48","Backend":{"Type":"vxlan"}}',
      true,
      /vxlan/,
    ],
  ])('validateConfig(%s) → valid %s', (text, valid, pattern) => {
    const v = validateConfig(text);
    expect(v.valid).toBe(valid);
    expect(v.error ?? v.config?.backend.type).toMatch(pattern);
  });

  it('warns about unknown keys like weftd does', () => {
    expect(
      validateConfig(
        '{"Network":"10.5.0.0/16","Netwrok":"x","Backend":{"Type":"vxlan","VNl":1}}',
      ).warnings.join(),
    ).toMatch(/Netwrok[\s\S]*VNl/);
  });

  it('maps errors to the documented exit codes', () => {
    expect(exitForError(new ConfigError('x', { code: 'E_OPTION_INVALID' }))).toBe(EXIT.usage);
    expect(exitForError(new ConfigError('x'))).toBe(EXIT.config);
    expect(exitForError(new WeftError('E_ETCD_UNAVAILABLE', 'x'))).toBe(EXIT.etcd);
    expect(exitForError(new WeftError('E_ETCD_TLS', 'x'))).toBe(EXIT.etcd);
    expect(exitForError(new WeftError('E_CONFIG_NOT_FOUND', 'x'))).toBe(EXIT.notFound);
    expect(exitForError(new Error('boom'))).toBe(EXIT.failed);
  });
});

describe('which lease is this host', () => {
  it('the public IP decides; subnet.env only breaks ties or stands in without an address match', async () => {
    const { findOwnRecord } = await import('../../../src/cli/gather.js');
    const { previousSubnets } = await import('../../../src/lease/subnet-env.js');
    const rec = (n: number, ip: string) => ({
      key: `10.5.${n}.0-24`,
      lease: {
        key: `10.5.${n}.0-24`,
        subnet: `10.5.${n}.0/24`,
        subnet6: null,
        attrs: { publicIp: ip, publicIpv6: null, backendType: 'vxlan' },
        expiration: null,
      },
      reserved: false,
      expiresIn: 10,
      leaseId: '1',
      modRevision: '1',
      createRevision: '1',
      problem: null,
    });
    const env = (subnet: string) => {
      const text = `FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=${subnet}\n`;
      return {
        path: 'p',
        text,
        parsed: previousSubnets(text),
        mtu: null,
        ipMasq: null,
        error: null,
      };
    };
    const records = [rec(1, '198.18.0.1'), rec(2, '198.18.0.2')];
    const addrs = [{ index: 2, cidr: '198.18.0.1/24' }];
    // stale subnet.env naming h2's subnet: still h1's lease
    expect(findOwnRecord({ records, subnetEnv: env('10.5.2.1/24') }, addrs)?.key).toBe(
      '10.5.1.0-24',
    );
    // no local address matches (NAT public IP): subnet.env decides
    expect(findOwnRecord({ records, subnetEnv: env('10.5.2.1/24') }, [])?.key).toBe('10.5.2.0-24');
    expect(findOwnRecord({ records, subnetEnv: env('10.5.9.1/24') }, [])).toBeNull();
  });
});
