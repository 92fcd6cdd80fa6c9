/** Env and netconf validation (docs/cni-contract.md A3, A5): codes 4, 6, 7; ids never become paths unchecked. */
import { describe, expect, it } from 'vitest';
import { parseEnv } from '../../../src/cni/env.js';
import { CniError } from '../../../src/cni/errors.js';
import { decodeStdin, parseNetConf } from '../../../src/cni/netconf.js';

const base = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'abc123',
  CNI_NETNS: '/run/netns/x',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin::rel:./x:/usr/lib/cni',
};

function codeOf(fn: () => unknown): { code: number; msg: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof CniError) return { code: err.code, msg: err.message };
    throw err;
  }
  throw new Error('did not throw');
}

describe('parseEnv', () => {
  it('parses a full ADD environment; empty and relative CNI_PATH entries dropped', () => {
    const e = parseEnv(base);
    expect(e).toMatchObject({
      command: 'ADD',
      containerId: 'abc123',
      ifname: 'eth0',
      path: ['/opt/cni/bin', '/usr/lib/cni'],
    });
  });
  it('VERSION needs nothing else (runtimes send dummies)', () => {
    expect(
      parseEnv({ CNI_COMMAND: 'VERSION', CNI_NETNS: 'dummy', CNI_PATH: 'dummy' }).command,
    ).toBe('VERSION');
  });
  it.each([
    [{ ...base, CNI_COMMAND: undefined }, 4, 'required env variables [CNI_COMMAND] missing'],
    [{ ...base, CNI_COMMAND: 'FOO' }, 4, 'unknown CNI_COMMAND "FOO"'],
    [
      { ...base, CNI_CONTAINERID: '', CNI_NETNS: '' },
      4,
      'required env variables [CNI_CONTAINERID,CNI_NETNS] missing',
    ],
    [
      { CNI_COMMAND: 'DEL' },
      4,
      'required env variables [CNI_CONTAINERID,CNI_IFNAME,CNI_PATH] missing',
    ],
    [{ ...base, CNI_CONTAINERID: '../../etc/x' }, 4, 'invalid characters in containerID'],
    [{ ...base, CNI_CONTAINERID: '.hidden' }, 4, 'invalid characters in containerID'],
    [{ ...base, CNI_CONTAINERID: 'a@b' }, 4, 'invalid characters in containerID'],
    [{ ...base, CNI_CONTAINERID: 'a'.repeat(201) }, 4, 'invalid characters in containerID'],
    [{ ...base, CNI_IFNAME: '..' }, 4, 'interface name'],
    [{ ...base, CNI_IFNAME: 'eth0/../x' }, 4, 'interface name'],
    [{ ...base, CNI_IFNAME: 'averyverylongname0' }, 4, 'longer than 15 bytes'],
    [{ ...base, CNI_IFNAME: 'eth%d' }, 4, 'contains "%" (the kernel treats it as a name template)'],
    [{ ...base, CNI_NETNS: 'relative' }, 4, 'not an absolute path'],
    [{ ...base, CNI_ARGS: 'foo' }, 4, 'CNI_ARGS pair "foo" is not KEY=VALUE'],
    [{ ...base, CNI_ARGS: 'a=b=c' }, 4, 'CNI_ARGS pair "a=b=c" is not KEY=VALUE'],
    [{ ...base, CNI_ARGS: 'IgnoreUnknown=1;' }, 4, 'CNI_ARGS pair "" is not KEY=VALUE'],
    [{ ...base, CNI_COMMAND: 'CHECK', CNI_ARGS: 'K' }, 4, 'CNI_ARGS pair "K" is not KEY=VALUE'],
  ])('rejects %#', (env, code, msg) => {
    const r = codeOf(() => parseEnv(env));
    expect(r.code).toBe(code);
    expect(r.msg).toContain(msg);
  });
  it('CNI_ARGS: K=V pairs (repeated keys, empty values, 64 KiB) pass on ADD; DEL takes any', () => {
    for (const args of [
      '',
      'IgnoreUnknown=1;IP=10.0.0.2;IP=10.0.0.3',
      'K=',
      `K=${'a'.repeat(65536)}`,
    ])
      expect(parseEnv({ ...base, CNI_ARGS: args }).args).toBe(args);
    expect(parseEnv({ ...base, CNI_COMMAND: 'DEL', CNI_ARGS: 'foo;;' }).args).toBe('foo;;');
  });
});

describe('netconf', () => {
  it('decodes only JSON objects (code 6)', () => {
    expect(codeOf(() => decodeStdin(Buffer.from('{nope'))).code).toBe(6);
    expect(codeOf(() => decodeStdin(Buffer.from('[1]'))).code).toBe(6);
    expect(codeOf(() => decodeStdin(Buffer.from(''))).code).toBe(6);
  });
  it('applies defaults and accepts unknown keys and capabilities', () => {
    const c = parseNetConf({
      cniVersion: '1.0.0',
      name: 'n',
      type: 'weft',
      capabilities: { x: true },
      whatever: 1,
    });
    expect(c).toMatchObject({
      subnetFile: '/run/flannel/subnet.env',
      dataDir: '/var/lib/cni/weft',
      subnetWaitSeconds: 10,
      delegate: undefined,
    });
  });
  it('reads GC attachments from the 1.1 key or the old misspelling', () => {
    const a = [{ containerID: 'c1', ifname: 'eth0' }];
    expect(parseNetConf({ name: 'n', 'cni.dev/valid-attachments': a }).validAttachments).toEqual(a);
    expect(parseNetConf({ name: 'n', 'cni.dev/attachments': a }).validAttachments).toEqual(a);
  });
  it.each([
    [{}, 'missing network name'],
    [{ name: '../x' }, 'invalid characters in network name'],
    [{ name: 'n', dataDir: 'relative/dir' }, '"dataDir" must be an absolute path'],
    [{ name: 'n', dataDir: '/var/lib/../../etc' }, 'must not contain ".."'],
    [{ name: 'n', subnetFile: 7 }, '"subnetFile" must be an absolute path'],
    [{ name: 'n', delegate: { name: 'x' } }, '"delegate" must not set "name"'],
    [{ name: 'n', delegate: { ipam: {} } }, '"delegate" must not set "ipam"'],
    [{ name: 'n', delegate: { type: 5 } }, '"delegate.type" must be a string'],
    [{ name: 'n', delegate: [] }, '"delegate" must be a JSON object'],
    [{ name: 'n', ipam: { routes: {} } }, '"ipam.routes" must be a list'],
    [{ name: 'n', subnetWaitSeconds: -1 }, 'subnetWaitSeconds'],
    [{ name: 'n', 'cni.dev/valid-attachments': [{ containerID: 1 }] }, 'valid-attachments'],
  ])('rejects with code 7: %#', (conf, msg) => {
    const r = codeOf(() => parseNetConf(conf as never));
    expect(r.code).toBe(7);
    expect(r.msg).toContain(msg);
  });
});
