/**
 * The Debian package as an operator runs it (issue 14): the `.deb` built by `npm run package`
 * (scripts/test.sh builds it before the e2e tier) is extracted with dpkg-deb -x, and its executables
 * run with Node hidden (weftd in a mount namespace where /usr/bin/node is /dev/null; the CNI plugin
 * with no node on PATH) against a real etcd on two simulated hosts. The packaged weftd brings the
 * network up and sends READY=1 to a real NOTIFY_SOCKET only once subnet.env exists; containers added
 * by the packaged CNI plugin reach each other across hosts; STOPPING=1 on SIGTERM.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopChild } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { createNetns, deleteNetns, ping } from '../helpers/netns.js';
import { startNotifyReceiver, type NotifyReceiver } from '../helpers/notify-socket.js';
import { requireCaps } from '../helpers/require.js';
import { callPlugin } from '../integration/cni/cni-helpers.js';
import { builtDeb } from './deb-helpers.js';
import {
  createCluster,
  runWeftctl,
  startWeftds,
  subnetsOf,
  type Cluster,
  type Weftd,
  weftPluginConf,
} from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft', 'cniPlugins');
useLeakCheck();

describe.skipIf(!runnable)('the packaged weftd, weftctl and CNI plugin, without Node', () => {
  let root: string;
  let c: Cluster | undefined;
  let daemons: Weftd[] = [];
  const receivers: NotifyReceiver[] = [];
  const containers: { ns: string; added: boolean; w: Weftd }[] = [];
  const ips: string[] = [];
  const conf = (w: Weftd) => ({
    cniVersion: '1.0.0',
    name: 'weftpkg',
    ...weftPluginConf(w, 'weftpk0'),
  });
  const cniBin = () => join(root, 'usr', 'lib', 'cni');
  const cni = (w: Weftd, command: string, id: string, ns: string) =>
    callPlugin({
      hostNs: w.host.netns,
      binDir: cniBin(),
      command,
      containerId: id,
      netns: ns,
      stdin: JSON.stringify(conf(w)),
      env: { PATH: '/usr/sbin:/sbin' }, // no node on PATH: the plugin carries its runtime
    });

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'weft-deb-'));
    execFileSync('dpkg-deb', ['-x', builtDeb(), root]);
    c = await createCluster(2, {
      weftd: join(root, 'usr', 'bin', 'weftd'),
      weftctl: join(root, 'usr', 'bin', 'weftctl'),
      hideNode: true,
      envFor: (h) => ({
        NOTIFY_SOCKET: join(root, `notify-h${h.index}.sock`),
        WATCHDOG_USEC: '2000000',
        NODE_OPTIONS: '--max-semi-space-size=2', // as weftd.service sets it
      }),
    });
    // a real notify socket per host, reporting whether that host's subnet.env existed at each datagram
    for (const h of c.topo.hosts) {
      receivers.push(
        await startNotifyReceiver(
          join(root, `notify-h${h.index}.sock`),
          join(c.tmp, `h${h.index}`, 'subnet.env'),
        ),
      );
    }
    // with the klog flags a flannel unit carries: accepted with a warning, not exit 2
    daemons = await startWeftds(c, { Network: '10.47.0.0/16', Backend: { Type: 'vxlan' } }, [
      '--ip-masq',
      '-v=2',
      '--logtostderr',
    ]);
  }, 180_000);

  afterAll(async () => {
    try {
      for (const ct of containers) {
        if (ct.added) await cni(ct.w, 'DEL', ct.ns, ct.ns);
        await deleteNetns(ct.ns);
      }
      await c?.destroy();
    } finally {
      await Promise.all(receivers.map((r) => r.stop()));
      if (root) rmSync(root, { recursive: true, force: true });
    }
  }, 60_000);

  it('each packaged weftd sent READY=1 only after its subnet.env existed, with a status line', async () => {
    for (const r of receivers) {
      const ready = await r.waitFor('READY=1');
      expect(ready.watchExists).toBe(true);
      expect(ready.msg).toMatch(/^READY=1\nSTATUS=ready: 10\.47\.\d+\.0\/24 via eth0, vxlan$/);
      // nothing said READY before that
      const first = r.messages.findIndex((m) => m.msg.includes('READY=1'));
      expect(r.messages.slice(0, first).every((m) => !m.watchExists)).toBe(true);
    }
    expect(subnetsOf(daemons[0]!).subnet).not.toBe(subnetsOf(daemons[1]!).subnet);
  });

  it('accepted flannel klog flags with a warning, and pings the watchdog', async () => {
    expect(daemons[0]!.logs).toContain("flannel's klog flag -v=2 is accepted and ignored");
    // the unit's NODE_OPTIONS is taken without a runtime warning in the journal
    for (const w of daemons) expect(w.logs).not.toMatch(/Warning|NODE_OPTIONS/);
    for (const r of receivers) await r.waitFor('WATCHDOG=1', 5000);
  });

  it('containers added by the packaged CNI plugin reach each other across hosts', async () => {
    for (const w of daemons) {
      const ns = await createNetns(`${w.host.netns}p`);
      const ct = { ns, added: false, w };
      containers.push(ct);
      const add = await cni(w, 'ADD', ns, ns);
      expect(add.code, add.stdout + add.stderr).toBe(0);
      ct.added = true;
      const ip = ((add.json?.['ips'] ?? []) as { address: string }[])[0]!.address.split('/')[0]!;
      ips.push(ip);
    }
    expect(await ping(containers[0]!.ns, ips[1]!, 3)).toBe(true);
    expect(await ping(containers[1]!.ns, ips[0]!, 3)).toBe(true);
  });

  it('the packaged weftctl reports the host (no node)', async () => {
    const r = await runWeftctl(c!, daemons[0]!, ['status', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as { lease?: { subnet?: string } };
    expect(s.lease?.subnet).toBe(subnetsOf(daemons[0]!).subnet);
  });

  it('SIGTERM: STOPPING=1, exit 0, the dataplane stays', async () => {
    const w = daemons[1]!;
    await stopChild(w.child, 20_000);
    expect(w.child.exitCode).toBe(0);
    await receivers[1]!.waitFor('STOPPING=1', 5000);
    // the container on the stopped host is still reachable: the dataplane outlives the daemon
    expect(await ping(containers[0]!.ns, ips[1]!, 3)).toBe(true);
  });
});
