/**
 * The plugin's state directory shared by separate processes (src/cni/lock.ts, src/cni/state.ts), with the
 * real bridge/host-local in a test netns host, through the standalone plugin (`weft-full`) and through
 * the shim handing calls to a real weftd:
 *  - GC in one process waits for an ADD in another (standalone or weftd, either side): it never releases
 *    the reservation of an attachment being created (state kept, address freed: handed out twice later);
 *  - a plugin killed while holding the lock does not hold it: the next call runs at once;
 *  - an entry named like a state file that is no regular file (directory, FIFO) is skipped by GC;
 *  - GC removes the temp files of a crashed writer (pid gone and a few seconds old, or very old), and
 *    keeps one whose writer may still be running.
 * The ADD is held at a known point with a `host-local` placed first in CNI_PATH that runs the real
 * /usr/lib/cni/host-local and then waits (the address is reserved, the bridge has not used it yet).
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, waitFor } from '../../helpers/exec.js';
import { useLeakCheck } from '../../helpers/leaks.js';
import { createNetns, deleteNetns, uniquePrefix } from '../../helpers/netns.js';
import { requireCaps } from '../../helpers/require.js';
import {
  callPlugin,
  installPlugin,
  startCniWeftd,
  type CniCall,
  type CniWeftd,
} from './cni-helpers.js';

const runnable = requireCaps('root', 'netns', 'cniPlugins');
useLeakCheck();

const SUBNET_ENV =
  'FLANNEL_NETWORK=10.78.0.0/16\nFLANNEL_SUBNET=10.78.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

describe.skipIf(!runnable)('weft CNI state directory across processes', () => {
  let weftd: CniWeftd | undefined;
  let tmp: string;
  let binDir: string;
  let slowDir: string;
  let hostNs: string;
  let prefix: string;
  let n = 0;
  const namespaces: string[] = [];

  function scenario() {
    const sub = join(tmp, `s${++n}`);
    mkdirSync(sub);
    writeFileSync(join(sub, 'subnet.env'), SUBNET_ENV);
    const dataDir = join(sub, 'state');
    const ipamDir = join(sub, 'ipam');
    const conf = (extra: Record<string, unknown> = {}) =>
      JSON.stringify({
        cniVersion: '1.1.0',
        name: 'weftnet',
        type: 'weft',
        subnetFile: join(sub, 'subnet.env'),
        dataDir,
        ipam: { dataDir: ipamDir },
        delegate: { bridge: 'weftbr1' },
        daemonSocket: weftd!.socket,
        ...extra,
      });
    const gcConf = () => conf({ 'cni.dev/valid-attachments': [] });
    const netDir = join(dataDir, 'weftnet');
    const ls = (d: string) => (existsSync(d) ? readdirSync(d) : []);
    return {
      conf,
      gcConf,
      netDir,
      state: () => ls(netDir).filter((f) => !f.startsWith('.')),
      ips: () => ls(join(ipamDir, 'weftnet')).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)),
    };
  }

  async function container(): Promise<string> {
    const ns = await createNetns(`${prefix}c${namespaces.length + 1}`);
    namespaces.push(ns);
    return ns;
  }

  type Via = 'standalone' | 'weftd';
  const call = (
    via: Via,
    command: string,
    stdin: string,
    o: { id?: string; ns?: string; slow?: boolean } = {},
  ): Promise<CniCall & { done: number }> =>
    callPlugin({
      hostNs,
      binDir,
      plugin: via === 'weftd' ? 'weft' : 'weft-full',
      command,
      stdin,
      ...(o.id ? { containerId: o.id } : {}),
      ...(o.ns ? { netns: o.ns } : {}),
      env: { CNI_PATH: `${o.slow ? `${slowDir}:` : ''}${binDir}:/usr/lib/cni` },
    }).then((r) => ({ ...r, done: performance.now() }));
  const ok = (r: CniCall): void => expect(r.code, `${r.stdout} ${r.stderr}`).toBe(0);
  const mark = () => join(slowDir, 'reserved');

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'weft-cni-lock-'));
    binDir = await installPlugin();
    slowDir = join(tmp, 'slow');
    mkdirSync(slowDir);
    // host-local, then (ADD only) a mark with the pids of bridge and of its parent (weft), and a pause of 3 s
    writeFileSync(
      join(slowDir, 'host-local'),
      `#!/bin/sh
out=$(/usr/lib/cni/host-local); rc=$?
if [ "$CNI_COMMAND" = ADD ]; then
  echo "$PPID $(cut -d" " -f4 /proc/$PPID/stat)" > ${mark()}.tmp && mv ${mark()}.tmp ${mark()}
  sleep 3
fi
printf '%s' "$out"
exit $rc
`,
    );
    chmodSync(join(slowDir, 'host-local'), 0o755);
    prefix = uniquePrefix();
    hostNs = await createNetns(`${prefix}h`);
    weftd = await startCniWeftd(hostNs, tmp);
  }, 120_000);

  afterAll(async () => {
    await weftd?.stop();
    for (const ns of namespaces) await deleteNetns(ns);
    if (hostNs) {
      await run('ip', ['-n', hostNs, 'link', 'del', 'weftbr1'], { allowFail: true });
      await deleteNetns(hostNs);
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    if (binDir) rmSync(binDir, { recursive: true, force: true });
  });

  it.each([
    ['standalone', 'standalone'],
    ['weftd', 'standalone'],
    ['standalone', 'weftd'],
  ] as const)(
    'GC (%s → %s) waits for an ADD in another process instead of releasing what it is creating',
    async (addVia, gcVia) => {
      const s = scenario();
      const ns = await container();
      rmSync(mark(), { force: true });
      const add = call(addVia, 'ADD', s.conf(), { id: 'race1', ns, slow: true });
      // the address is reserved and the ADD holds on; its state file is there, not yet in the runtime's list
      await waitFor('host-local reserved the address', () => existsSync(mark()), 20_000);
      expect(s.state()).toEqual(['race1@eth0']);
      const gc = call(gcVia, 'GC', s.gcConf());
      const [a, g] = await Promise.all([add, gc]);
      ok(a);
      ok(g);
      // GC ran after the ADD: it released the whole attachment, state and address together. Without the
      // lock it released them during the ADD, which then stored its state again: the state names an
      // address host-local no longer holds.
      // (the ADD process may exit a moment after it let go of the lock, so GC can end first by a hair;
      // without the lock GC ends ~3 s before the ADD, which sleeps holding it)
      expect(g.done).toBeGreaterThan(a.done - 1000);
      expect([s.state(), s.ips()]).toEqual([[], []]);
    },
    60_000,
  );

  it('a plugin killed while it holds the lock does not hold it: GC runs at once', async () => {
    const s = scenario();
    const ns = await container();
    rmSync(mark(), { force: true });
    const add = call('standalone', 'ADD', s.conf(), { id: 'crash1', ns, slow: true });
    await waitFor('host-local reserved the address', () => existsSync(mark()), 20_000);
    const [bridgePid, weftPid] = readFileSync(mark(), 'utf8').trim().split(/\s+/).map(Number);
    expect(readFileSync(`/proc/${weftPid}/cmdline`, 'utf8')).toContain('weft-full');
    process.kill(weftPid!, 'SIGKILL');
    expect((await add).code).not.toBe(0);
    ok(await call('standalone', 'GC', s.gcConf()));
    // GC did not wait for anything of the dead ADD: its orphaned delegate is still in its pause
    expect(existsSync(`/proc/${bridgePid}`)).toBe(true);
    expect(s.state()).toEqual([]);
    // what the orphaned bridge still does after its pause is undone by a DEL, as a runtime would send
    await waitFor(
      'the orphaned bridge ended',
      () => !existsSync(`/proc/${bridgePid}`) || null,
      20_000,
    );
    ok(await call('standalone', 'DEL', s.conf(), { id: 'crash1', ns }));
    expect([s.state(), s.ips()]).toEqual([[], []]);
  }, 60_000);

  it.each(['standalone', 'weftd'] as const)(
    'GC (%s) skips a directory and a FIFO named like state files, and logs them',
    async (via) => {
      const s = scenario();
      const ns = await container();
      ok(await call(via, 'ADD', s.conf(), { id: 'keep1', ns }));
      mkdirSync(join(s.netDir, 'dir1@eth0'));
      expect(spawnSync('mkfifo', [join(s.netDir, 'fifo1@eth0')]).status).toBe(0);
      const gc = await call(via, 'GC', s.conf({ 'cni.dev/valid-attachments': [] }));
      ok(gc);
      expect(gc.stderr).toContain('no regular file');
      expect(gc.stderr).toContain('dir1@eth0');
      expect(gc.stderr).toContain('fifo1@eth0');
      // keep1 was released; the two entries are left alone
      expect([s.state().sort(), s.ips()]).toEqual([['dir1@eth0', 'fifo1@eth0'], []]);
    },
    60_000,
  );

  it.each(['standalone', 'weftd'] as const)(
    "GC (%s) removes a crashed writer's temp files, not a live writer's",
    async (via) => {
      const s = scenario();
      ok(await call(via, 'GC', s.gcConf())); // creates the network's directory
      const dead = spawnSync('true').pid!;
      const live = process.pid;
      const now = Date.now() / 1000;
      const temp = (name: string, pid: number, ageSeconds: number) => {
        const f = join(s.netDir, `.${name}@eth0.${pid}.tmp`);
        writeFileSync(f, '{"format":1}');
        utimesSync(f, now - ageSeconds, now - ageSeconds);
        return `.${name}@eth0.${pid}.tmp`;
      };
      const gone = [temp('dead1', dead, 60), temp('old1', live, 3600)];
      const kept = [temp('fresh1', dead, 0), temp('live1', live, 60)];
      mkdirSync(join(s.netDir, `.dir1@eth0.${dead}.tmp`));
      utimesSync(join(s.netDir, `.dir1@eth0.${dead}.tmp`), now - 3600, now - 3600);
      const gc = await call(via, 'GC', s.gcConf());
      ok(gc);
      const left = readdirSync(s.netDir).filter((f) => f.endsWith('.tmp'));
      expect(left.sort()).toEqual([...kept, `.dir1@eth0.${dead}.tmp`].sort());
      for (const g of gone) expect(gc.stderr).toContain(g);
    },
    60_000,
  );
});
