/**
 * The installed plugin's fast path (README.md "CNI plugin"): the C shim (`weft`) hands each call to a real
 * weftd over its CNI socket; weftd runs the plugin in-process and has the shim run the reference
 * delegates. Checked against the standalone full plugin (`weft-full`) with the real bridge/host-local in
 * a test netns host:
 *  - every command and error answers byte-identically through weftd (a shim-only bin dir, without
 *    weft-full, proves weftd served them: the shim cannot fall back there);
 *  - the shim's head start: `bridge` runs once per ADD/DEL and never reads a config weftd did not send;
 *  - weftd stopped: DEL and GC still work (the shim runs weft-full), ADD answers code 11, STATUS 50;
 *  - a socket served by a non-root process gets no request (the shim checks SO_PEERCRED first);
 *  - an environment larger than weftd accepts, or a "daemonSocket" the shim cannot use (JSON escapes):
 *    ADD answers code 4 / 7 (never 11, retrying cannot help), DEL works via weft-full;
 *  - hostile socket clients (garbage, huge lengths, slowloris, a client vanishing mid-call, non-root)
 *    do not hurt weftd; a hung delegate holds only its own call; a second weftd never steals the socket.
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeRequest } from '../../../src/daemon/cni-wire.js';
import { run, sleep, spawnTracked, stopChild, waitFor } from '../../helpers/exec.js';
import { useLeakCheck } from '../../helpers/leaks.js';
import { createNetns, deleteNetns, uniquePrefix } from '../../helpers/netns.js';
import { requireCaps } from '../../helpers/require.js';
import {
  callPlugin,
  installPlugin,
  REPO,
  startCniWeftd,
  type CniCall,
  type CniWeftd,
} from './cni-helpers.js';

const runnable = requireCaps('root', 'netns', 'cniPlugins');
useLeakCheck();

const SUBNET_ENV =
  'FLANNEL_NETWORK=10.78.0.0/16\nFLANNEL_SUBNET=10.78.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

/** MACs and host veth names differ between two real ADDs; everything else must not. */
const normalise = (s: string): string =>
  s.replace(/"mac":"[0-9a-f:]{17}"/g, '"mac":"M"').replace(/veth[0-9a-f]{8}/g, 'vethX');

describe.skipIf(!runnable)('the weft CNI shim served by weftd', () => {
  let tmp: string;
  let binDir: string;
  let shimOnly: string;
  let hostNs: string;
  let prefix: string;
  let weftd: CniWeftd | undefined;
  let n = 0;
  const namespaces: string[] = [];

  async function container(): Promise<string> {
    const ns = await createNetns(`${prefix}c${++n}`);
    namespaces.push(ns);
    return ns;
  }

  /** A scenario dir with its own subnet.env, state, IPAM dir and bridge. */
  function scenario(o: { subnetEnv?: boolean; delegate?: Record<string, unknown> } = {}) {
    const dir = join(tmp, `s${++n}`);
    mkdirSync(dir);
    if (o.subnetEnv !== false) writeFileSync(join(dir, 'subnet.env'), SUBNET_ENV);
    const conf = (cniVersion: string, extra: Record<string, unknown> = {}): string =>
      JSON.stringify({
        cniVersion,
        name: 'weftshim',
        type: 'weft',
        daemonSocket: weftd!.socket,
        subnetFile: join(dir, 'subnet.env'),
        dataDir: join(dir, 'state'),
        subnetWaitSeconds: 0,
        ipam: { dataDir: join(dir, 'ipam') },
        delegate: { bridge: `wsb${n}`, ...o.delegate },
        ...extra,
      });
    const files = (sub: string): string[] =>
      existsSync(join(dir, sub, 'weftshim')) ? readdirSync(join(dir, sub, 'weftshim')) : [];
    return {
      dir,
      conf,
      // Without the temp file of a state write in flight (weftd writes the result just after answering).
      state: () => files('state').filter((f) => !f.startsWith('.')),
      ips: () => files('ipam').filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)),
    };
  }

  const call = (
    dir: string,
    plugin: 'weft' | 'weft-full',
    command: string,
    stdin: string,
    o: { id?: string; ns?: string; env?: Record<string, string | undefined> } = {},
  ): Promise<CniCall> =>
    callPlugin({
      hostNs,
      binDir: dir,
      plugin,
      command,
      stdin,
      ...(o.id ? { containerId: o.id } : {}),
      ...(o.ns ? { netns: o.ns } : {}),
      env: { CNI_PATH: `${binDir}:/usr/lib/cni`, ...o.env },
    });
  const viaWeftd = (
    ...a: Parameters<typeof call> extends [string, string, ...infer R] ? R : never
  ) => call(shimOnly, 'weft', ...a);
  const standalone = (
    ...a: Parameters<typeof call> extends [string, string, ...infer R] ? R : never
  ) => call(binDir, 'weft-full', ...a);
  const ok = (r: CniCall): void => expect(r.code, `${r.stdout} ${r.stderr}`).toBe(0);

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'weft-cni-shim-'));
    binDir = await installPlugin();
    // The shim alone: any fallback to weft-full fails here, so an answer proves weftd gave it.
    shimOnly = join(tmp, 'shim-only');
    mkdirSync(shimOnly);
    copyFileSync(join(binDir, 'weft'), join(shimOnly, 'weft'));
    chmodSync(join(shimOnly, 'weft'), 0o755);
    prefix = uniquePrefix();
    hostNs = await createNetns(`${prefix}h`);
    weftd = await startCniWeftd(hostNs, tmp);
  }, 120_000);

  afterAll(async () => {
    await weftd?.stop();
    for (const ns of namespaces) await deleteNetns(ns);
    if (hostNs) await deleteNetns(hostNs);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    if (binDir) rmSync(binDir, { recursive: true, force: true });
  });

  it('the socket is 0600 and a second weftd on the same path does not steal it', async () => {
    expect(statSync(weftd!.socket).mode & 0o777).toBe(0o600);
    const other = join(tmp, 'second');
    mkdirSync(other);
    // Same socket path: start a second weftd whose --cni-socket is the first one's.
    const second = await startCniWeftd(hostNs, other, weftd!.socket).catch((e: Error) => e);
    expect(second).toBeInstanceOf(Error);
    expect((second as Error).message).toMatch(/another process serves it/);
    const r = await viaWeftd(
      'VERSION',
      JSON.stringify({ cniVersion: '0.4.0', daemonSocket: weftd!.socket }),
      {
        env: { CNI_NETNS: 'dummy', CNI_PATH: 'dummy', CNI_IFNAME: 'dummy' },
      },
    );
    expect(r.json).toEqual({
      cniVersion: '0.4.0',
      supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    });
  });

  it('every command and error answers byte-identically through weftd and standalone', async () => {
    const s = scenario();
    const missing = scenario({ subnetEnv: false });
    const cases: [string, string, Parameters<typeof call>[4]][] = [
      ['VERSION', JSON.stringify({ cniVersion: '1.0.0', daemonSocket: weftd!.socket }), {}],
      ['VERSION', JSON.stringify({ cniVersion: '9.9.9', daemonSocket: weftd!.socket }), {}],
      ['ADD', s.conf('9.9.9'), { id: 'x1', ns: 'none' }],
      ['ADD', s.conf('1.0.0', { name: '../etc' }), { id: 'x1', ns: 'none' }],
      ['ADD', s.conf('1.0.0'), { id: '../../etc/x', ns: 'none' }],
      ['ADD', s.conf('1.0.0'), { id: 'x1', ns: 'none', env: { CNI_IFNAME: undefined } }],
      ['ADD', s.conf('1.0.0'), { id: 'x1', ns: 'none', env: { CNI_PATH: '/nonexistent' } }],
      ['ADD', missing.conf('1.0.0'), { id: 'x1', ns: 'none' }],
      ['ADD', s.conf('1.0.0', { subnetWaitSeconds: 'soon' }), { id: 'x1', ns: 'none' }],
      ['CHECK', s.conf('0.3.1'), { id: 'x1', ns: 'none' }],
      ['CHECK', s.conf('1.0.0'), { id: 'x1', ns: 'none' }],
      ['DEL', s.conf('1.0.0'), { id: 'never-added' }],
      ['STATUS', s.conf('1.1.0'), {}],
      ['STATUS', missing.conf('1.1.0'), {}],
      ['GC', s.conf('1.1.0', { 'cni.dev/valid-attachments': [] }), {}],
      ['GC', s.conf('1.1.0'), {}],
      ['BOGUS', s.conf('1.0.0'), {}],
    ];
    for (const [command, stdin, o] of cases) {
      const a = await viaWeftd(command, stdin, o);
      const b = await standalone(command, stdin, o);
      expect({ command, stdin, stdout: a.stdout, code: a.code }).toEqual({
        command,
        stdin,
        stdout: b.stdout,
        code: b.code,
      });
    }
    // Garbage stdin (code 6) and an oversized one (code 5, read bounded by the shim).
    for (const stdin of ['{not json', ' '.repeat(4 * 1024 * 1024 + 10)]) {
      const a = await call(binDir, 'weft', 'ADD', stdin, { id: 'x1', ns: 'none' });
      const b = await standalone('ADD', stdin, { id: 'x1', ns: 'none' });
      expect([a.stdout, a.code]).toEqual([b.stdout, b.code]);
    }
  });

  it.each(['0.4.0', '1.0.0', '1.1.0'])(
    'ADD, CHECK, DEL through weftd equal the standalone plugin (cniVersion %s)',
    async (v) => {
      const [s1, s2] = [scenario(), scenario()];
      const [ns1, ns2] = [await container(), await container()];
      const a = await viaWeftd('ADD', s1.conf(v), { id: 'same', ns: ns1 });
      const b = await standalone('ADD', s2.conf(v), { id: 'same', ns: ns2 });
      ok(a);
      ok(b);
      expect(
        normalise(a.stdout)
          .replaceAll(ns1, 'NS')
          .replace(/wsb\d+/g, 'BR'),
      ).toBe(
        normalise(b.stdout)
          .replaceAll(ns2, 'NS')
          .replace(/wsb\d+/g, 'BR'),
      );
      expect(s1.state()).toEqual(['same@eth0']);
      for (const cmd of ['CHECK', 'DEL', 'DEL']) {
        const x = await viaWeftd(cmd, s1.conf(v), { id: 'same', ns: ns1 });
        const y = await standalone(cmd, s2.conf(v), { id: 'same', ns: ns2 });
        expect([cmd, x.stdout, x.code]).toEqual([cmd, y.stdout, y.code]);
        ok(x);
      }
      expect([s1.state(), s1.ips(), s2.state(), s2.ips()]).toEqual([[], [], [], []]);
    },
  );

  it('hostile socket clients do not hurt weftd; a call in progress elsewhere is not held up', async () => {
    const raw = (bytes: Buffer | null, holdMs = 0): Promise<{ got: number; closedMs: number }> =>
      new Promise((resolve) => {
        const t0 = Date.now();
        const c = connect(weftd!.socket);
        let got = 0;
        c.on('data', (d: Buffer) => (got += d.length));
        c.on('error', () => undefined);
        c.on('close', () => resolve({ got, closedMs: Date.now() - t0 }));
        c.on('connect', () => {
          if (bytes) c.write(bytes);
          if (holdMs > 0) setTimeout(() => c.destroy(), holdMs);
        });
      });
    const huge = Buffer.alloc(16);
    huge.write('WCNI', 0, 'latin1');
    huge.writeUInt32LE(1, 4);
    huge.writeUInt32LE(0xffffffff, 8);
    const slow = raw(Buffer.from('WCN'));
    const results = await Promise.all([
      raw(Buffer.from('GET / HTTP/1.0\r\n\r\n')),
      raw(huge),
      raw(Buffer.from('WCNI\x09\0\0\0\0\0\0\0\0\0\0\0', 'latin1')),
      raw(
        Buffer.concat([
          encodeRequest({ CNI_COMMAND: 'VERSION' }, Buffer.from('{}')),
          Buffer.from('extra'),
        ]),
      ),
    ]);
    for (const r of results) expect(r.got).toBe(0);
    // While the slow client holds its connection, real calls go through.
    const s = scenario();
    const ns = await container();
    ok(await viaWeftd('ADD', s.conf('1.0.0'), { id: 'busy', ns }));
    ok(await viaWeftd('DEL', s.conf('1.0.0'), { id: 'busy', ns }));
    const sl = await slow;
    expect(sl.got).toBe(0);
    expect(sl.closedMs).toBeGreaterThanOrEqual(9_000); // REQUEST_TIMEOUT_MS
    expect(sl.closedMs).toBeLessThan(30_000);

    // A client that asks for ADD, then vanishes when weftd hands it the delegate: weftd fails that
    // call, releases the container's lock, and the same container can be served right after.
    const env = {
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'vanish',
      CNI_NETNS: `/var/run/netns/${ns}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: `${binDir}:/usr/lib/cni`,
    };
    const gone = await new Promise<number>((resolve) => {
      const c = connect(weftd!.socket);
      let got = 0;
      c.on('data', (d: Buffer) => {
        got += d.length;
        c.destroy();
      });
      c.on('error', () => undefined);
      c.on('close', () => resolve(got));
      c.on('connect', () => c.write(encodeRequest(env, Buffer.from(s.conf('1.0.0')))));
    });
    expect(gone).toBeGreaterThan(0); // it got the WCNX frame
    const again = await viaWeftd('ADD', s.conf('1.0.0'), { id: 'vanish', ns });
    ok(again);
    ok(await viaWeftd('DEL', s.conf('1.0.0'), { id: 'vanish', ns }));
    expect(s.ips()).toEqual([]);

    // A non-root client (socket opened up for this check only) is cut off without an answer.
    // (socket opened up, and its temp dir made searchable, for this check only)
    chmodSync(weftd!.socket, 0o666);
    chmodSync(tmp, 0o711);
    try {
      const script = `const c=require('net').connect(${JSON.stringify(weftd!.socket)});let g=0;c.on('data',d=>g+=d.length);c.on('error',()=>{});c.on('close',()=>{console.log('closed',g);process.exit(0)});c.on('connect',()=>c.write(Buffer.from(${JSON.stringify(
        encodeRequest({ CNI_COMMAND: 'VERSION' }, Buffer.from('{}')).toString('base64'),
      )},'base64')));setTimeout(()=>{console.log('open',g);process.exit(0)},5000);`;
      const r = await run('setpriv', [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        '-e',
        script,
      ]);
      expect(r.stdout.trim()).toBe('closed 0');
    } finally {
      chmodSync(weftd!.socket, 0o600);
      chmodSync(tmp, 0o700);
    }
    expect(weftd!.child.exitCode).toBeNull();
    expect(weftd!.logs()).toMatch(/non-root process refused/);
  }, 60_000);

  it('the head start: bridge runs once per ADD/DEL, and never reads a config weftd did not send', async () => {
    // A `bridge` first in CNI_PATH that logs when it starts and when it has read its config, then hands
    // that config to the real one. The shim starts it before weftd asks (start_head).
    const wrapDir = join(tmp, 'wrap-bin');
    mkdirSync(wrapDir);
    const log = join(tmp, 'bridge.log');
    writeFileSync(
      join(wrapDir, 'bridge'),
      `#!/bin/sh\necho "start $CNI_COMMAND" >> ${log}\nin=$(cat)\necho "read $CNI_COMMAND" >> ${log}\n` +
        `printf '%s' "$in" | /usr/lib/cni/bridge\n`,
      { mode: 0o755 },
    );
    const lines = (): string[] =>
      existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : [];
    const env = { CNI_PATH: `${wrapDir}:${binDir}:/usr/lib/cni` };
    const s = scenario();
    const ns = await container();
    const add = await viaWeftd('ADD', s.conf('1.0.0'), { id: 'head', ns, env });
    ok(add);
    expect(add.json?.['ips']).toEqual([
      expect.objectContaining({ address: expect.stringMatching(/^10\.78\.5\.\d+\/24$/) }),
    ]);
    ok(await viaWeftd('DEL', s.conf('1.0.0'), { id: 'head', ns, env }));
    expect(lines()).toEqual(['start ADD', 'read ADD', 'start DEL', 'read DEL']);
    expect([s.state(), s.ips()]).toEqual([[], []]);

    // weftd answers without asking (no subnet.env: code 11): the early bridge is killed unread.
    rmSync(log, { force: true });
    const missing = scenario({ subnetEnv: false });
    const refused = await viaWeftd('ADD', missing.conf('1.0.0'), { id: 'head2', ns, env });
    expect(refused.code).toBe(1);
    expect(refused.json?.['code']).toBe(11);
    await sleep(200); // a wrapper killed mid-start could not write any later line
    expect(lines().filter((l) => l.startsWith('read'))).toEqual([]);
    expect(lines().length).toBeLessThanOrEqual(1);
    expect(missing.ips()).toEqual([]);

    // It really starts early: weftd waits for subnet.env (written 800 ms later) before it asks, and the
    // wrapper has started long before that, but reads its config only after.
    rmSync(log, { force: true });
    const late = scenario({ subnetEnv: false });
    const stamp = join(tmp, 'stamps.log');
    writeFileSync(
      join(wrapDir, 'bridge'),
      `#!/bin/sh\necho "start $(date +%s%N)" >> ${stamp}\nin=$(cat)\necho "read $(date +%s%N)" >> ${stamp}\n` +
        `printf '%s' "$in" | /usr/lib/cni/bridge\n`,
      { mode: 0o755 },
    );
    const ns2 = await container();
    const pending = viaWeftd('ADD', late.conf('1.0.0', { subnetWaitSeconds: 10 }), {
      id: 'head4',
      ns: ns2,
      env,
    });
    await sleep(800);
    const written = BigInt(Date.now()) * 1_000_000n;
    writeFileSync(join(late.dir, 'subnet.env'), SUBNET_ENV);
    ok(await pending);
    const stamps = Object.fromEntries(
      readFileSync(stamp, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(' ') as [string, string]),
    );
    expect(BigInt(stamps['start']!)).toBeLessThan(written);
    expect(BigInt(stamps['read']!)).toBeGreaterThan(written);
    ok(await viaWeftd('DEL', late.conf('1.0.0'), { id: 'head4', ns: ns2, env }));

    // Another delegate type is not started before weftd asks for it.
    rmSync(log, { force: true });
    writeFileSync(
      join(wrapDir, 'other'),
      `#!/bin/sh\necho "start $CNI_COMMAND" >> ${log}\nexit 1\n`,
      {
        mode: 0o755,
      },
    );
    const other = scenario({ subnetEnv: false, delegate: { type: 'other' } });
    const r = await viaWeftd('ADD', other.conf('1.0.0'), { id: 'head3', ns, env });
    expect(r.json?.['code']).toBe(11);
    await sleep(200);
    expect(lines()).toEqual([]);
  }, 60_000);

  it('a hung delegate holds only its own call', async () => {
    const slowDir = join(tmp, 'slow-bin');
    mkdirSync(slowDir);
    writeFileSync(
      join(slowDir, 'sleepy'),
      '#!/bin/sh\ncat >/dev/null\n[ "$CNI_COMMAND" = ADD ] && sleep 6 && exit 1\nexit 0\n',
      {
        mode: 0o755,
      },
    );
    const hung = scenario({ delegate: { type: 'sleepy' } });
    const fine = scenario();
    const [nsA, nsB] = [await container(), await container()];
    let hungDone = false;
    const a = viaWeftd('ADD', hung.conf('1.0.0'), {
      id: 'hung',
      ns: nsA,
      env: { CNI_PATH: `${slowDir}:${binDir}:/usr/lib/cni` },
    }).finally(() => (hungDone = true));
    await sleep(300);
    ok(await viaWeftd('ADD', fine.conf('1.0.0'), { id: 'fine', ns: nsB }));
    ok(await viaWeftd('DEL', fine.conf('1.0.0'), { id: 'fine', ns: nsB }));
    expect(hungDone).toBe(false);
    const r = await a;
    expect(r.code).toBe(1);
    expect(r.json?.['msg']).toMatch(/sleepy ADD failed \(exit code 1\)/);
    expect(hung.state()).toEqual([]); // the undo (sleepy's DEL) succeeded
  }, 60_000);

  it('weftd stopped: DEL and GC succeed through the fallback, ADD answers 11, STATUS 50; after a restart ADD works', async () => {
    const s = scenario();
    const [ns1, ns2, ns3] = [await container(), await container(), await container()];
    ok(await call(binDir, 'weft', 'ADD', s.conf('1.1.0'), { id: 'k1', ns: ns1 }));
    ok(await call(binDir, 'weft', 'ADD', s.conf('1.1.0'), { id: 'k2', ns: ns2 }));
    expect(s.ips()).toHaveLength(2);
    await weftd!.stop();
    expect(existsSync(weftd!.socket)).toBe(false);

    ok(await call(binDir, 'weft', 'DEL', s.conf('1.1.0'), { id: 'k1', ns: ns1 }));
    expect(s.state()).toEqual(['k2@eth0']);
    ok(await call(binDir, 'weft', 'GC', s.conf('1.1.0', { 'cni.dev/valid-attachments': [] })));
    expect([s.state(), s.ips()]).toEqual([[], []]);
    const add = await call(binDir, 'weft', 'ADD', s.conf('1.1.0'), { id: 'k3', ns: ns3 });
    expect(add.code).toBe(1);
    expect(add.json).toMatchObject({ cniVersion: '1.1.0', code: 11 });
    expect(String(add.json?.['msg'])).toMatch(
      /weftd is not serving CNI requests on this host: connect .*cni\.sock/,
    );
    // STATUS must not report ready while ADD answers 11: 50 naming weftd (subnet.env is fine here)
    const status = await call(binDir, 'weft', 'STATUS', s.conf('1.1.0'));
    expect(status.code).toBe(1);
    expect(status.json).toMatchObject({ cniVersion: '1.1.0', code: 50 });
    expect(String(status.json?.['msg'])).toMatch(
      /weftd is not serving CNI requests on this host: connect .*cni\.sock/,
    );
    const version = await call(binDir, 'weft', 'VERSION', '{"cniVersion":"1.0.0"}');
    expect(version.json?.['cniVersion']).toBe('1.0.0');
    expect(s.state()).toEqual([]);

    weftd = await startCniWeftd(hostNs, tmp);
    ok(await call(binDir, 'weft', 'STATUS', s.conf('1.1.0')));
    ok(await call(binDir, 'weft', 'ADD', s.conf('1.1.0'), { id: 'k3', ns: ns3 }));
    ok(await call(binDir, 'weft', 'DEL', s.conf('1.1.0'), { id: 'k3', ns: ns3 }));
    expect([s.state(), s.ips()]).toEqual([[], []]);
  }, 60_000);

  it('a socket not served by root never receives the call: the shim checks SO_PEERCRED before it sends', async () => {
    // A listener run as nobody on a path the netconf names: it must not get the runtime's environment
    // and netconf (the shim falls back: ADD answers 11, DEL runs weft-full). It prints the bytes it got.
    const dir = mkdtempSync(join(tmpdir(), 'weft-cni-nonroot-'));
    chmodSync(dir, 0o777);
    const sock = join(dir, 'cni.sock');
    const script = `const fs=require('fs');const s=require('net').createServer(c=>{let g=0;c.on('data',d=>g+=d.length);c.on('error',()=>{});c.on('close',()=>fs.writeSync(1,'got '+g+'\\n'))});s.listen(${JSON.stringify(sock)},()=>fs.writeSync(1,'listening\\n'));setTimeout(()=>process.exit(0),20000);`;
    const child = spawnTracked('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      process.execPath,
      '-e',
      script,
    ]);
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    try {
      await waitFor('the non-root listener', () => out.includes('listening'), 10_000, 20);
      const s = scenario();
      const ns = await container();
      const conf = JSON.stringify({ ...JSON.parse(s.conf('1.0.0')), daemonSocket: sock });
      const add = await call(binDir, 'weft', 'ADD', conf, { id: 'nonroot', ns });
      expect(add.json).toMatchObject({ code: 11 });
      expect(String(add.json?.['msg'])).toMatch(/is not served by root/);
      ok(await call(binDir, 'weft', 'DEL', conf, { id: 'nonroot', ns }));
      await waitFor('both connections closed', () => out.match(/got /g)?.length === 2, 10_000, 20);
      expect(out.trim().split('\n')).toEqual(['listening', 'got 0', 'got 0']);
      expect([s.state(), s.ips()]).toEqual([[], []]);
    } finally {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('an environment larger than weftd takes: ADD answers code 4 (not 11, retrying cannot help); DEL works', async () => {
    const s = scenario();
    const ns = await container();
    // 10 variables of 120 KB (one exec string may hold at most 128 KiB): 1.2 MB beside the CNI_* ones
    const big: Record<string, string> = {};
    for (let i = 0; i < 10; i++) big[`WEFT_TEST_BIG${i}`] = 'a'.repeat(120_000);
    const add = await call(binDir, 'weft', 'ADD', s.conf('1.0.0'), { id: 'env1', ns, env: big });
    expect(add.code).toBe(1);
    // the shim's own answer carries the request's cniVersion, as the full plugin's errors do
    expect(add.json).toMatchObject({ cniVersion: '1.0.0', code: 4 });
    expect(String(add.json?.['msg'])).toMatch(
      /^the environment \(\d+ bytes\) is larger than the 1048576 bytes weft passes to weftd$/,
    );
    expect([s.state(), s.ips()]).toEqual([[], []]);
    ok(await call(binDir, 'weft', 'DEL', s.conf('1.0.0'), { id: 'env1', ns, env: big }));
    // the same container with an ordinary environment is served
    ok(await call(binDir, 'weft', 'ADD', s.conf('1.0.0'), { id: 'env1', ns }));
    ok(await call(binDir, 'weft', 'DEL', s.conf('1.0.0'), { id: 'env1', ns, env: big }));
    expect([s.state(), s.ips()]).toEqual([[], []]);
  });

  it('"daemonSocket" written with JSON escapes: ADD answers code 7 naming it (not 11); DEL works', async () => {
    const s = scenario();
    const ns = await container();
    const plain = JSON.stringify(weftd!.socket);
    const conf = s.conf('1.0.0').replace(plain, plain.replaceAll('/', '\\/'));
    expect(conf).toContain('"daemonSocket":"\\/');
    const add = await call(binDir, 'weft', 'ADD', conf, { id: 'esc1', ns });
    expect(add.code).toBe(1);
    expect(add.json).toMatchObject({ cniVersion: '1.0.0', code: 7 });
    expect(String(add.json?.['msg'])).toContain('"daemonSocket" is not a plain absolute path');
    expect(String(add.json?.['details'])).toContain('without JSON escapes');
    expect([s.state(), s.ips()]).toEqual([[], []]);
    ok(await call(binDir, 'weft', 'DEL', conf, { id: 'esc1', ns }));
  });

  it("the shim's own errors (weftd unreachable, no full plugin) carry the request's cniVersion when stdin parses", async () => {
    const conf = (v: unknown) =>
      JSON.stringify({ cniVersion: v, name: 'weftnet', daemonSocket: join(tmp, 'nobody.sock') });
    const answer = async (stdin: string) => {
      const r = await call(shimOnly, 'weft', 'DEL', stdin, { id: 'v1' });
      expect(r.code).toBe(1);
      expect(r.json).toMatchObject({
        code: 5,
        msg: expect.stringContaining('weftd is unavailable'),
      });
      return r.json?.['cniVersion'];
    };
    expect(await answer(conf('0.4.0'))).toBe('0.4.0');
    expect(
      await answer(conf('1.0.0').replace('{', '{"a": [1, -2.5e3, true, null, "\\u00e9"], ')),
    ).toBe('1.0.0');
    // as the full plugin (src/cni/dispatch.ts): no usable version in a JSON object → the latest
    expect(await answer(conf(7))).toBe('1.1.0');
    expect(await answer(JSON.stringify({ daemonSocket: join(tmp, 'nobody.sock') }))).toBe('1.1.0');
    // no JSON object: nothing to tell
    expect(await answer('not json')).toBeUndefined();
    expect(await answer(`${conf('1.0.0')} trailing`)).toBeUndefined();
    expect(await answer(conf('1.0.0').replace('}', ', "x": tru}'))).toBeUndefined();
  });

  it('the shim build is the installed `weft`', () => {
    expect(statSync(join(binDir, 'weft')).size).toBe(
      statSync(join(REPO, 'cni-shim', 'build', 'weft-cni-shim')).size,
    );
  });
});
