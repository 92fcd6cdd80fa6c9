/**
 * weftctl status and doctor against a real etcd holding what weftd refuses or what must not reach a
 * terminal: a network config with an unknown Backend.Type or invalid backend options (weftd refuses to
 * start on it, so status and doctor must not call it valid), and a lease key with an escape sequence
 * (doctor's fix line names the key: it must reach the terminal sanitized), this host's own lease with
 * an escape sequence in its backend (status's problem lines) and an endpoint whose error text has some
 * (status's problem lines, the error line on stderr). runCli runs in-process and
 * only reads this process' network namespace.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run.js';
import { startEtcd, type EtcdFixture } from '../helpers/etcd.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('etcd', 'etcdctl');
useLeakCheck();

describe.skipIf(!runnable)('weftctl on a hostile network config and lease key', () => {
  let etcd: EtcdFixture;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  const ctl = (prefix: string, args: string[], subnetFile = '/nonexistent/subnet.env') =>
    runCli(
      [
        ...args,
        `--etcd-endpoints=${etcd.endpoints.join(',')}`,
        `--etcd-prefix=${prefix}`,
        `--subnet-file=${subnetFile}`,
        '--healthz-port=0',
        '--no-probe',
        '--timeout=5',
      ],
      {
        env: {},
        stdoutIsTty: false,
        stderrIsTty: false,
        writeErr: () => {},
        readStdin: async () => '',
      },
    );

  it.each([
    [{ Type: 'vxlna' }, /Backend\.Type "vxlna" is unknown/],
    [{ Type: 'vxlan', VNI: -5 }, /Backend\.VNI: -5 is invalid/],
  ])('a config weftd refuses (%j) is invalid in status and doctor', async (backend, why) => {
    const prefix = etcd.prefix('cfg');
    await etcd.etcdctl([
      'put',
      `${prefix}/config`,
      JSON.stringify({ Network: '10.7.0.0/16', Backend: backend }),
    ]);
    const status = await ctl(prefix, ['status', '--json']);
    expect(status.exitCode).toBe(1);
    const doc = JSON.parse(status.stdout) as { configError: string | null; problems: string[] };
    expect(doc.configError).toMatch(why);
    expect(doc.problems.join('\n')).toMatch(why);
    const doctor = JSON.parse((await ctl(prefix, ['doctor', '--json'])).stdout) as {
      checks: { id: string; status: string; message: string }[];
    };
    const config = doctor.checks.find((c) => c.id === 'config');
    expect(config).toMatchObject({ status: 'fail', message: expect.stringMatching(why) });
  });

  it('lease reserve refuses a key holding garbage and a public IP weftd would refuse', async () => {
    const prefix = etcd.prefix('reserve');
    await etcd.etcdctl([
      'put',
      `${prefix}/config`,
      JSON.stringify({ Network: '10.7.0.0/16', Backend: { Type: 'vxlan' } }),
    ]);
    await etcd.etcdctl(['put', `${prefix}/subnets/10.7.3.0-24`, 'garbage']);
    const garbage = await ctl(prefix, [
      'lease',
      'reserve',
      '10.7.3.0/24',
      '--public-ip=198.18.0.3',
      '--json',
    ]);
    expect(garbage.exitCode).toBe(5);
    expect(JSON.parse(garbage.stdout)).toMatchObject({
      ok: false,
      error: { code: 'E_LEASE_INVALID', message: expect.stringMatching(/invalid value/) },
    });
    for (const ip of ['224.0.0.1', '127.0.0.1', '0.1.2.3', '255.255.255.255']) {
      const r = await ctl(prefix, ['lease', 'reserve', '10.7.6.0/24', `--public-ip=${ip}`]);
      expect(r.exitCode, ip).toBe(2);
    }
    expect(await etcd.etcdctl(['get', `${prefix}/subnets/10.7.6.0-24`])).toBe('');
  });

  it('doctor prints no escape sequence from a hostile lease key, also in a fix line', async () => {
    const prefix = etcd.prefix('esc');
    await etcd.etcdctl([
      'put',
      `${prefix}/config`,
      JSON.stringify({ Network: '10.7.0.0/16', Backend: { Type: 'vxlan' } }),
    ]);
    await etcd.etcdctl(['put', `${prefix}/subnets/10.7.4.0-24\x1b]0;owned\x07\x1b[5m`, '{}']);
    const human = await ctl(prefix, ['doctor']);
    expect(human.stdout).toMatch(
      /etcdctl del <prefix>\/subnets\/10\.7\.4\.0-24\?\]0;owned\?\?\[5m/,
    );
    // eslint-disable-next-line no-control-regex
    expect(human.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
  });
  it("status prints no escape sequence from this host's own lease (its backend) nor from an endpoint's error text", async () => {
    const prefix = etcd.prefix('own-esc');
    await etcd.etcdctl([
      'put',
      `${prefix}/config`,
      JSON.stringify({ Network: '10.7.0.0/16', Backend: { Type: 'vxlan' } }),
    ]);
    // a hostile writer's lease that subnet.env names: status compares its backend with the config's
    await etcd.etcdctl([
      'put',
      `${prefix}/subnets/10.7.5.0-24`,
      JSON.stringify({ PublicIP: '198.18.0.5', BackendType: 'vxlan\x1b]0;owned\x07\x1b[5m' }),
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'weft-own-esc-'));
    // an "etcd" that answers every call with HTTP 500 and escape sequences in its body
    const evil = createServer((_req, res) => {
      res.writeHead(500);
      res.end('\x1b]0;owned\x07\x1b[2Jboom');
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    try {
      const subnetFile = join(dir, 'subnet.env');
      writeFileSync(subnetFile, 'FLANNEL_NETWORK=10.7.0.0/16\nFLANNEL_SUBNET=10.7.5.1/24\n');
      const status = await ctl(prefix, ['status'], subnetFile);
      expect(status.stdout).toMatch(/! weftd runs the vxlan\?\]0;owned\?\?\[5m backend/);
      // eslint-disable-next-line no-control-regex
      expect(status.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
      const endpoint = `--etcd-endpoints=http://127.0.0.1:${(evil.address() as { port: number }).port}`;
      let stderr = '';
      const io = {
        env: {},
        stdoutIsTty: false,
        stderrIsTty: false,
        writeErr: (t: string) => void (stderr += t),
        readStdin: async () => '',
      };
      const leases = await runCli(['leases', endpoint, '--timeout=2'], io);
      expect(leases.exitCode).toBe(4);
      const down = await runCli(
        ['status', endpoint, `--subnet-file=${subnetFile}`, '--healthz-port=0', '--timeout=2'],
        io,
      );
      expect(down.stdout).toMatch(/! etcd unreachable: .*HTTP 500: \?\]0;owned\?\?\[2Jboom/);
      expect(stderr).toMatch(/weftctl leases: .*HTTP 500: \?\]0;owned\?\?\[2Jboom/);
      // eslint-disable-next-line no-control-regex
      expect(down.stdout + stderr).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    } finally {
      evil.closeAllConnections();
      await new Promise((resolve) => evil.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a config that is not JSON is named once, and leases counts garbage as invalid, not reserved', async () => {
    const prefix = etcd.prefix('notjson');
    await etcd.etcdctl(['put', `${prefix}/config`, '{"Network": 10.7']);
    await etcd.etcdctl(['put', `${prefix}/subnets/10.7.3.0-24`, 'garbage']);
    const status = JSON.parse((await ctl(prefix, ['status', '--json'])).stdout) as {
      configError: string;
      problems: string[];
    };
    expect(status.configError).toMatch(/^network config is not valid JSON: /);
    const problem = status.problems.find((p) => p.includes('JSON'))!;
    expect(problem).toBe(status.configError);
    // the JSON parser's message once, not again as the cause
    const parserMessage = problem.replace('network config is not valid JSON: ', '');
    expect(problem.split(parserMessage)).toHaveLength(2);
    const doctor = JSON.parse((await ctl(prefix, ['doctor', '--json'])).stdout) as {
      checks: { id: string; message: string }[];
    };
    expect(doctor.checks.find((c) => c.id === 'config')?.message).toBe(status.configError);
    const leases = await ctl(prefix, ['leases']);
    expect(leases.stdout).toMatch(/1 key, 0 reserved, 1 invalid/);
  });

  it('config validate --file refuses a FIFO and a device at once instead of hanging or filling memory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-cfg-file-'));
    try {
      const fifo = join(dir, 'config.json');
      execFileSync('mkfifo', [fifo]);
      for (const file of [fifo, '/dev/zero']) {
        const r = await ctl(etcd.prefix('file'), [
          'config',
          'validate',
          `--file=${file}`,
          '--json',
        ]);
        expect(r.exitCode, file).not.toBe(0);
        expect(JSON.parse(r.stdout), file).toMatchObject({
          ok: false,
          error: { code: 'E_IO', message: `--file: ${file} is not a regular file` },
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('docker-opts refuses a FIFO or a device planted at the subnet file at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-docker-opts-'));
    try {
      const fifo = join(dir, 'subnet.env');
      execFileSync('mkfifo', [fifo]);
      for (const file of [fifo, '/dev/zero']) {
        const r = await ctl(etcd.prefix('docker'), ['docker-opts', '--json'], file);
        expect(r.exitCode, file).not.toBe(0);
        expect(JSON.parse(r.stdout), file).toMatchObject({
          ok: false,
          error: { code: 'E_IO', message: `${file} is not a regular file` },
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
