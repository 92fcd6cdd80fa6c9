/**
 * The dispatcher and command logic with recording fakes (pure logic only; the real plugins and kernel are
 * exercised in test/integration/cni): error JSON shapes and codes, version gates, state
 * written before the delegate runs, undo on failure, DEL keeping state until the delegate's DEL succeeded.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cniPluginDir } from './plugin-dir.js';
import type { CniDeps } from '../../../src/cni/deps.js';
import { runPlugin } from '../../../src/cni/dispatch.js';
import { CniError } from '../../../src/cni/errors.js';
import type { InvokeRequest } from '../../../src/cni/invoke.js';
import { utilFlock } from '../../../src/cni/lock.js';
import { silentLog } from '../../../src/cni/log.js';

let dir: string;
let calls: { req: InvokeRequest; stateFiles: string[] }[];
let failNext: Partial<Record<InvokeRequest['command'], CniError>>;

const bridgeResult = {
  cniVersion: '1.0.0',
  interfaces: [
    { name: 'cni0', mac: '02:00:00:00:00:01' },
    { name: 'vethX', mac: '02:00:00:00:00:02' },
    { name: 'eth0', mac: '02:00:00:00:00:03', sandbox: '/run/netns/c' },
  ],
  ips: [{ interface: 2, address: '10.5.72.2/24', gateway: '10.5.72.1' }],
  routes: [{ dst: '10.5.0.0/16', gw: '10.5.72.1' }],
  dns: {},
};

function deps(): CniDeps {
  return {
    invoke: async (req) => {
      calls.push({ req, stateFiles: listState() });
      const f = failNext[req.command];
      if (f) {
        delete failNext[req.command];
        throw f;
      }
      if (req.command === 'ADD') {
        const v = (JSON.parse(req.stdin) as { cniVersion: string }).cniVersion;
        return JSON.stringify({ ...bridgeResult, cniVersion: v });
      }
      if (req.command === 'VERSION')
        return '{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}';
      return '';
    },
    inspect: async () => ({
      link: { exists: true, mac: '02:00:00:00:00:03', mtu: 1450, addresses: ['10.5.72.2/24'] },
      routes: [{ dst: '10.5.0.0/16', gw: '10.5.72.1', dev: 'eth0' }],
    }),
    log: silentLog,
    readFile: (p) => (existsSync(p) ? readFileSync(p, 'utf8') : undefined),
    sleep: async () => {},
    now: () => Date.now(),
    flock: utilFlock,
  };
}

function listState(): string[] {
  const d = join(dir, 'state', 'net1');
  // the state lock's files (src/cni/lock.ts) are no state
  return existsSync(d) ? readdirSync(d).filter((n) => !n.startsWith('.lock')) : [];
}

const env = (command: string, extra: Record<string, string> = {}) => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: 'ctr1',
  CNI_NETNS: '/run/netns/c',
  CNI_IFNAME: 'eth0',
  // (the error-table rows are built before beforeEach runs; they fail before any plugin lookup)
  CNI_PATH: dir === undefined ? '/unset' : join(dir, 'bin'),
  ...extra,
});
const conf = (v: string, extra: object = {}) =>
  Buffer.from(
    JSON.stringify({
      cniVersion: v,
      name: 'net1',
      type: 'weft',
      subnetFile: join(dir, 'subnet.env'),
      dataDir: join(dir, 'state'),
      subnetWaitSeconds: 0,
      ...extra,
    }),
  );
const parse = (s: string) => JSON.parse(s) as Record<string, unknown>;

beforeEach(() => {
  dir = cniPluginDir('weft-cni-unit-');
  calls = [];
  failNext = {};
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('error JSON', () => {
  it.each([
    [{}, '{}', 4, 'required env variables [CNI_COMMAND] missing'],
    [env('ADD'), 'garbage', 6, 'failed to decode network configuration'],
    [env('ADD'), '{"cniVersion":"9.9.9","name":"n"}', 1, 'incompatible CNI versions'],
    [env('ADD'), '{"name":"n"}', 1, 'config is "0.1.0"'],
    [env('CHECK'), '{"cniVersion":"0.3.1","name":"n"}', 1, 'does not allow CHECK'],
    [env('STATUS'), '{"cniVersion":"1.0.0","name":"n"}', 1, 'does not allow STATUS'],
    [env('GC'), '{"cniVersion":"1.0.0","name":"n"}', 1, 'does not allow GC'],
    [env('ADD'), '{"cniVersion":"1.0.0"}', 7, 'missing network name'],
    [
      env('ADD', { CNI_CONTAINERID: '../../etc/x' }),
      '{"cniVersion":"1.0.0","name":"n"}',
      4,
      'invalid characters in containerID',
    ],
  ])('%# → code %i', async (e, stdin, code, msg) => {
    const out = await runPlugin(e, Buffer.from(stdin), deps());
    expect(out.exitCode).toBe(1);
    const j = parse(out.stdout);
    expect(j['code']).toBe(code);
    expect(j['msg']).toContain(msg);
    expect(typeof j['cniVersion']).toBe('string');
    expect(Object.keys(j).every((k) => ['cniVersion', 'code', 'msg', 'details'].includes(k))).toBe(
      true,
    );
    expect(calls).toEqual([]);
  });

  it('the error carries the request version; non-CniErrors become 999', async () => {
    const d = { ...deps(), invoke: async () => Promise.reject(new TypeError('boom')) };
    const out = await runPlugin(env('ADD'), conf('0.4.0'), d);
    expect(parse(out.stdout)).toEqual({
      cniVersion: '0.4.0',
      code: 999,
      msg: 'internal error: boom',
    });
  });

  it('VERSION echoes a supported request version and lists the versions', async () => {
    const out = await runPlugin(
      { CNI_COMMAND: 'VERSION', CNI_PATH: 'dummy' },
      Buffer.from('{"cniVersion":"1.0.0"}'),
      deps(),
    );
    expect(out).toEqual({
      exitCode: 0,
      stdout:
        '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n',
    });
    const none = await runPlugin({ CNI_COMMAND: 'VERSION' }, Buffer.from(''), deps());
    expect(parse(none.stdout)['cniVersion']).toBe('1.1.0');
  });
});

describe('commands', () => {
  it('ADD writes the state before the delegate runs, answers in the requested version, DEL removes it', async () => {
    const out = await runPlugin(env('ADD'), conf('1.1.0'), deps());
    expect(out.exitCode).toBe(0);
    expect(calls[0]!.req.command).toBe('ADD');
    expect(calls[0]!.stateFiles).toEqual(['ctr1@eth0']);
    expect(parse(calls[0]!.req.stdin)['cniVersion']).toBe('1.0.0');
    expect(parse(out.stdout)['cniVersion']).toBe('1.1.0');
    expect((await runPlugin(env('CHECK'), conf('1.1.0'), deps())).exitCode).toBe(0);
    expect(calls.at(-1)!.req.command).toBe('CHECK');
    expect(parse(calls.at(-1)!.req.stdin)['prevResult']).toMatchObject({ cniVersion: '1.0.0' });
    expect((await runPlugin(env('DEL'), conf('1.1.0'), deps())).exitCode).toBe(0);
    expect(listState()).toEqual([]);
  });

  it('a second ADD without DEL is refused before the delegate runs', async () => {
    await runPlugin(env('ADD'), conf('1.0.0'), deps());
    calls = [];
    const out = await runPlugin(env('ADD'), conf('1.0.0'), deps());
    expect(parse(out.stdout)['code']).toBe(102);
    expect(calls).toEqual([]);
  });

  it('state of an attachment whose interface is gone (reboot without DEL) is released, then ADD proceeds', async () => {
    await runPlugin(env('ADD'), conf('1.0.0'), deps());
    calls = [];
    const d = {
      ...deps(),
      inspect: async () => ({
        link: { exists: false, mac: undefined, mtu: undefined, addresses: [] },
        routes: [],
      }),
    };
    const out = await runPlugin(env('ADD'), conf('1.0.0'), d);
    expect(out.exitCode).toBe(0);
    expect(calls.map((c) => [c.req.command, c.req.env['CNI_NETNS']])).toEqual([
      ['DEL', ''],
      ['ADD', undefined],
    ]);
    expect(listState()).toEqual(['ctr1@eth0']);
  });

  it('a failed delegate ADD is undone with DEL and the state removed; the delegate code is kept', async () => {
    failNext.ADD = new CniError(11, 'bridge ADD: busy');
    const out = await runPlugin(env('ADD'), conf('1.0.0'), deps());
    expect(parse(out.stdout)).toMatchObject({ code: 11, msg: 'bridge ADD: busy' });
    expect(calls.map((c) => c.req.command)).toEqual(['ADD', 'DEL']);
    expect(listState()).toEqual([]);
  });

  it('when the undo DEL fails too, the state stays for the runtime DEL', async () => {
    failNext.ADD = new CniError(7, 'x');
    failNext.DEL = new CniError(5, 'y');
    await runPlugin(env('ADD'), conf('1.0.0'), deps());
    expect(listState()).toEqual(['ctr1@eth0']);
  });

  it('DEL keeps the state while the delegate DEL fails, removes it once it succeeds, then is a no-op', async () => {
    await runPlugin(env('ADD'), conf('1.0.0'), deps());
    failNext.DEL = new CniError(5, 'ipam locked');
    const first = await runPlugin(env('DEL'), conf('1.0.0'), deps());
    expect(parse(first.stdout)['code']).toBe(5);
    expect(listState()).toEqual(['ctr1@eth0']);
    expect((await runPlugin(env('DEL'), conf('1.0.0'), deps())).exitCode).toBe(0);
    expect(listState()).toEqual([]);
    // Without state the delegate DEL still runs (rebuilt config), best effort: a failure is not reported.
    calls = [];
    failNext.DEL = new CniError(5, 'whatever');
    expect((await runPlugin(env('DEL'), conf('1.0.0'), deps())).exitCode).toBe(0);
    expect(calls.map((c) => c.req.command)).toEqual(['DEL']);
  });

  it('DEL with corrupt state rebuilds the delegate config from subnet.env (never fails on bad local state)', async () => {
    await runPlugin(env('ADD'), conf('1.0.0'), deps());
    writeFileSync(join(dir, 'state', 'net1', 'ctr1@eth0'), '');
    const out = await runPlugin(env('DEL'), conf('1.0.0'), deps());
    expect(out.exitCode).toBe(0);
    expect(calls.at(-1)!.req.command).toBe('DEL');
    expect(listState()).toEqual([]);
  });

  it('ADD without subnet.env answers try-again (11); STATUS answers 50', async () => {
    rmSync(join(dir, 'subnet.env'));
    expect(parse((await runPlugin(env('ADD'), conf('1.0.0'), deps())).stdout)['code']).toBe(11);
    expect(parse((await runPlugin(env('STATUS'), conf('1.1.0'), deps())).stdout)['code']).toBe(50);
    expect(listState()).toEqual([]);
  });

  it('STATUS asks a 1.1.0 delegate and passes its verdict through; an older delegate counts as available', async () => {
    failNext.STATUS = new CniError(51, 'degraded');
    const bad = await runPlugin(
      { CNI_COMMAND: 'STATUS', CNI_PATH: join(dir, 'bin') },
      conf('1.1.0'),
      deps(),
    );
    expect(parse(bad.stdout)).toMatchObject({ code: 51, msg: 'degraded' });
    expect(calls.map((c) => c.req.command)).toEqual(['VERSION', 'STATUS']);
    const old = {
      ...deps(),
      invoke: async (req: InvokeRequest) => {
        calls.push({ req, stateFiles: [] });
        return '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}';
      },
    };
    calls = [];
    expect(
      (await runPlugin({ CNI_COMMAND: 'STATUS', CNI_PATH: join(dir, 'bin') }, conf('1.1.0'), old))
        .exitCode,
    ).toBe(0);
    expect(calls.map((c) => c.req.command)).toEqual(['VERSION']);
    const missing = await runPlugin(
      { CNI_COMMAND: 'STATUS', CNI_PATH: '/nonexistent' },
      conf('1.1.0'),
      deps(),
    );
    expect(parse(missing.stdout)).toMatchObject({ code: 50 });
    expect(String(parse(missing.stdout)['msg'])).toContain('failed to find plugin "bridge"');
  });

  it('CHECK reports what differs in the netns', async () => {
    await runPlugin(env('ADD'), conf('1.0.0'), deps());
    const d = {
      ...deps(),
      inspect: async () => ({
        link: { exists: true, mac: '02:00:00:00:00:09', mtu: 1450, addresses: [] },
        routes: [],
      }),
    };
    const j = parse((await runPlugin(env('CHECK'), conf('1.0.0'), d)).stdout);
    expect(j['code']).toBe(103);
    expect(j['msg']).toContain('MAC 02:00:00:00:00:09');
    expect(j['msg']).toContain('address 10.5.72.2/24 is missing');
    expect(j['msg']).toContain('route 10.5.0.0/16 via 10.5.72.1 is missing');
  });

  it("CHECK accepts a MAC changed by a later chained plugin when the runtime's prevResult says so", async () => {
    await runPlugin(env('ADD'), conf('1.0.0'), deps());
    const d = {
      ...deps(),
      inspect: async () => ({
        link: { exists: true, mac: '02:00:00:00:00:09', mtu: 1450, addresses: ['10.5.72.2/24'] },
        routes: [{ dst: '10.5.0.0/16', gw: '10.5.72.1', dev: 'eth0' }],
      }),
    };
    expect(parse((await runPlugin(env('CHECK'), conf('1.0.0'), d)).stdout)['code']).toBe(103);
    const tuned = {
      ...bridgeResult,
      interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:09', sandbox: '/run/netns/c' }],
      ips: [{ interface: 0, address: '10.5.72.2/24', gateway: '10.5.72.1' }],
    };
    const out = await runPlugin(env('CHECK'), conf('1.0.0', { prevResult: tuned }), d);
    expect(out).toEqual({ stdout: '', exitCode: 0 });
  });

  it('GC releases stored attachments not in valid-attachments (DEL without netns) and keeps the rest', async () => {
    await runPlugin(env('ADD'), conf('1.1.0'), deps());
    await runPlugin(env('ADD', { CNI_CONTAINERID: 'ctr2' }), conf('1.1.0'), deps());
    calls = [];
    const gc = conf('1.1.0', {
      'cni.dev/valid-attachments': [{ containerID: 'ctr1', ifname: 'eth0' }],
    });
    const out = await runPlugin({ CNI_COMMAND: 'GC', CNI_PATH: join(dir, 'bin') }, gc, deps());
    expect(out.exitCode).toBe(0);
    expect(listState()).toEqual(['ctr1@eth0']);
    expect(
      calls.map((c) => [c.req.command, c.req.env['CNI_CONTAINERID'], c.req.env['CNI_NETNS']]),
    ).toEqual([
      ['DEL', 'ctr2', ''],
      ['VERSION', '', 'dummy'],
      ['GC', undefined, undefined],
    ]);
  });
});
