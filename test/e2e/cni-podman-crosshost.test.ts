/**
 * A real runtime across hosts (issue 6): two simulated hosts with a real weftd each (VXLAN), the weft
 * CNI plugin installed into a temp bin dir (reference plugins from /usr/lib/cni). On host 1, podman with
 * its CNI backend (sandboxed as in test/integration/cni/podman-helpers.ts, under `nsenter --net=<h1>`)
 * runs a busybox container on a weft conflist that points at h1's weftd subnet.env; on host 2 a container
 * netns is put on the network by calling the plugin directly, like a runtime would. The podman container
 * gets an address inside h1's lease and pings the host-2 container through the VXLAN overlay.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useLeakCheck } from '../helpers/leaks.js';
import { ping } from '../helpers/netns.js';
import { requireCaps } from '../helpers/require.js';
import { installPlugin } from '../integration/cni/cni-helpers.js';
import {
  BUSYBOX_IMAGE,
  createPodmanSandbox,
  havePodmanTools,
  type PodmanSandbox,
} from '../integration/cni/podman-helpers.js';
import {
  addCniContainer,
  createCluster,
  startWeftds,
  subnetsOf,
  type Cluster,
  type Weftd,
  weftPluginConf,
  type CniContainer,
} from './weftd-harness.js';

const runnable =
  requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft', 'cniPlugins') && havePodmanTools();
useLeakCheck();

/** Is dotted-quad `ip` inside `cidr` (IPv4)? */
function inCidr(ip: string, cidr: string): boolean {
  const num = (a: string): number =>
    a.split('.').reduce((acc, o) => (acc << 8) + Number(o), 0) >>> 0;
  const [base = '', len = '0'] = cidr.split('/');
  const mask = Number(len) === 0 ? 0 : (0xffffffff << (32 - Number(len))) >>> 0;
  return (num(ip) & mask) === (num(base) & mask);
}

describe.skipIf(!runnable)('podman on a weft network reaches a container on another host', () => {
  let c: Cluster | undefined;
  let daemons: Weftd[];
  let binDir: string | undefined;
  let sb: PodmanSandbox | undefined;
  let h2c: CniContainer | undefined;
  let net: string;
  const conf = (w: Weftd): Record<string, unknown> => weftPluginConf(w, 'weftbr0');

  beforeAll(async () => {
    c = await createCluster(2);
    // --ip-masq: FLANNEL_IPMASQ=true, so the bridge plugin is told ipMasq=false (flannel's deployment).
    daemons = await startWeftds(c, { Network: '10.46.0.0/16', Backend: { Type: 'vxlan' } }, [
      '--ip-masq',
    ]);
    binDir = await installPlugin();
    net = `${c.topo.hosts[0]!.netns}n`.replace(/^weft-t/, 'weftpm');

    // Host 2: the plugin called directly for a container netns, like a runtime would.
    const h2 = daemons[1]!;
    const stdin = JSON.stringify({ cniVersion: '1.0.0', name: `${net}x`, ...conf(h2) });
    h2c = await addCniContainer(h2, binDir, 'h2c1', `${h2.host.netns}c`, stdin);

    sb = await createPodmanSandbox(daemons[0]!.host.netns, binDir, net);
  }, 120_000);

  afterAll(async () => {
    try {
      if (sb) await sb.cleanup();
      await h2c?.remove();
    } finally {
      if (binDir) rmSync(binDir, { recursive: true, force: true });
      await c?.destroy();
    }
  }, 60_000);

  it('the host-2 container got an address from host 2 lease', () => {
    const s2 = subnetsOf(daemons[1]!).subnet;
    expect(inCidr(h2c!.ip, s2)).toBe(true);
  });

  it('a podman container on host 1 gets an address from host 1 lease and pings the host-2 container over VXLAN', async () => {
    const w1 = daemons[0]!;
    const s1 = subnetsOf(w1).subnet;
    const s2 = subnetsOf(daemons[1]!).subnet;
    expect(s1).not.toBe(s2);
    const name = `${net}a`;
    sb!.conflist(name, '1.0.0', [conf(w1)]);
    const id = (
      await sb!.podman(['run', '-d', '--network', name, BUSYBOX_IMAGE, 'sleep', '120'])
    ).stdout.trim();
    const inspect = JSON.parse((await sb!.podman(['inspect', id])).stdout) as {
      NetworkSettings: { Networks: Record<string, { IPAddress: string; MacAddress: string }> };
    }[];
    const ip = inspect[0]!.NetworkSettings.Networks[name]!.IPAddress;
    expect(inCidr(ip, s1)).toBe(true);
    const ipamDir = join(w1.dir, 'cni-ipam', name);
    expect(existsSync(ipamDir) ? readdirSync(ipamDir) : []).toContain(ip);
    // The podman container reaches the container on host 2 (and back: ping needs the reply).
    const r = await sb!.podman([
      'exec',
      id,
      'sh',
      '-c',
      `ip -4 -o addr show eth0; ip route; ping -c2 -W2 ${h2c!.ip}`,
    ]);
    expect(r.stdout).toContain(`inet ${ip}/`);
    expect(r.stdout).toContain('10.46.0.0/16 via');
    expect(r.stdout).toContain('2 packets received');
    // And host 2's container reaches the podman container.
    expect(await ping(h2c!.netns, ip, 1)).toBe(true);
    await sb!.podman(['rm', '-f', '-t', '0', id]);
    expect(readdirSync(ipamDir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f))).toEqual([]);
  }, 90_000);
});
