/**
 * The bench's one topology (two simulated hosts on the underlay bridge, etcd in the underlay netns:
 * test/helpers/netns.ts and etcd.ts) and the dataplane paths measured on it, one after the other:
 *
 *   underlay            h1 → h2 over eth0 (198.18.0.1 → 198.18.0.2)
 *   routed by hand      containers 10.246.<i>.2 on a bridge, routes via the peer's eth0 (host-gw style)
 *   kernel VXLAN by hand  flannel's layout with iproute2 (VNI 1, port 8472, /32 on the device, neigh +
 *                       fdb + onlink route per peer), containers 10.245.<i>.2, MTU 1450
 *   weft <backend>      a real weftd per host (bin/weftd.js --ip-masq, forward rules on: the defaults of
 *                       a flannel deployment), containers through the weft CNI plugin (reference bridge +
 *                       host-local), addresses from weftd's lease
 *
 * Both "by hand" container anchors also carry flannel's own `--ip-masq` + forward rules, written by hand
 * (`flannelRulesByHand`), so anchor and weft row have the same firewall: a nat chain turns on conntrack
 * in the host namespace, which costs every packet (inner and encapsulated) a conntrack lookup. Measured
 * on this bench: ~15-20 µs of ping RTT, paired runs of one weft path with and without its ruleset.
 * Without the rules the anchor measured a plain kernel, not flannel, and weft's gap to it was that cost.
 *
 * Each path is set up, measured and torn down; `resetHost` puts a host namespace back to just lo + eth0
 * so the next path starts from the same state.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { nsRun, run, sleep, spawnTracked, stopChild } from '../../test/helpers/exec.js';
import {
  createNetns,
  deleteNetns,
  type SimContainer,
  type SimHost,
  type Topology,
} from '../../test/helpers/netns.js';
import type { EtcdFixture } from '../../test/helpers/etcd.js';
import {
  putConfig,
  startWeftd,
  subnetsOf,
  waitReady,
  type Cluster,
  type ClusterOptions,
  type Weftd,
} from '../../test/e2e/weftd-harness.js';
import { subnetEnvSettings } from '../../src/lease/subnet-env.js';
import { callCni, installWeftPlugin, ipv4Of, weftConf } from './cni.js';
import type { Endpoints } from './measure.js';

export interface PathSetup {
  readonly endpoints: Endpoints;
  /** daemons whose CPU counts toward this path (weftd) */
  readonly pids?: readonly number[];
  /** Stops what the path started and resets both hosts. */
  teardown(): Promise<void>;
}

/** Thrown when a path cannot be built because a part of weft is missing: the row becomes n/a. */
export class NotAvailable extends Error {}

async function linkNames(ns: string): Promise<string[]> {
  const out = (await run('ip', ['-n', ns, '-o', 'link', 'show'])).stdout;
  return out
    .split('\n')
    .map((l) => (l.split(': ')[1] ?? '').split('@')[0] ?? '')
    .filter(Boolean);
}

/** Back to lo + eth0 only: other links, routes in 10.0.0.0/8 and nftables rules go. */
export async function resetHost(h: SimHost): Promise<void> {
  for (const c of h.containers.splice(0)) await deleteNetns(c.netns);
  for (const name of await linkNames(h.netns)) {
    if (name !== 'lo' && name !== 'eth0') {
      await run('ip', ['-n', h.netns, 'link', 'del', name], { allowFail: true });
    }
  }
  await run('ip', ['-n', h.netns, 'route', 'flush', 'root', '10.0.0.0/8'], { allowFail: true });
  await nsRun(h.netns, 'nft', ['flush', 'ruleset'], { allowFail: true });
}

function iperfServer(ns: string): ChildProcess {
  return spawnTracked('iperf3', ['-s'], { ns, stdio: 'ignore' });
}

async function finish(topo: Topology, server: ChildProcess | undefined): Promise<void> {
  if (server) await stopChild(server);
  for (const h of topo.hosts) await resetHost(h);
}

export async function underlay(topo: Topology): Promise<PathSetup> {
  const [h1, h2] = [topo.hosts[0]!, topo.hosts[1]!];
  const server = iperfServer(h2.netns);
  await sleep(200);
  return {
    endpoints: { clientNs: h1.netns, serverNs: h2.netns, serverIp: h2.underlayIp },
    teardown: () => finish(topo, server),
  };
}

/**
 * flannel's nftables ruleset for `--ip-masq` with forward rules (docs/flannel-compat.md §15, flannel's own
 * layout `flannel-ipv4`), for host `h` with cluster network `10.<net>.0.0/16` and subnet `10.<net>.<i>.0/24`.
 * Written out here rather than taken from weft so the anchor does not depend on the code it judges.
 */
export function flannelRulesByHand(net: number, hostIndex: number): string {
  return flannelRulesFor(`10.${net}.0.0/16`, `10.${net}.${hostIndex}.0/24`);
}

/** The same ruleset for any cluster network `n` and host subnet `s` (bench/firewall.ts's anchor). */
export function flannelRulesFor(n: string, s: string): string {
  return [
    'table ip flannel-ipv4 {',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    ip saddr ${n} accept`,
    `    ip daddr ${n} accept`,
    '  }',
    '  chain postrtg {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    '    meta mark & 0x4000 == 0x4000 return',
    `    ip saddr ${s} ip daddr ${n} return`,
    `    ip saddr ${n} ip daddr ${s} return`,
    `    ip saddr != ${s} ip daddr ${n} return`,
    `    ip saddr ${n} ip daddr != 224.0.0.0/4 masquerade fully-random`,
    `    ip saddr != ${n} ip daddr ${n} masquerade fully-random`,
    '  }',
    '}',
    '',
  ].join('\n');
}

async function addFlannelRules(topo: Topology, net: number): Promise<void> {
  for (const h of topo.hosts.slice(0, 2)) {
    await nsRun(h.netns, 'nft', ['-f', '-'], { input: flannelRulesByHand(net, h.index) });
  }
}

async function containerPair(
  topo: Topology,
  net: number,
  mtu: number,
): Promise<[SimContainer, SimContainer]> {
  const cs: SimContainer[] = [];
  for (const h of topo.hosts.slice(0, 2)) {
    cs.push(
      await topo.addContainer(h, {
        cidr: `10.${net}.${h.index}.2/24`,
        gateway: `10.${net}.${h.index}.1`,
        bridge: 'cbr0',
        mtu,
      }),
    );
  }
  return [cs[0]!, cs[1]!];
}

export async function routedByHand(topo: Topology): Promise<PathSetup> {
  const [a, b] = await containerPair(topo, 246, 1500);
  await addFlannelRules(topo, 246);
  for (const h of topo.hosts.slice(0, 2)) {
    for (const p of topo.hosts.slice(0, 2)) {
      if (p === h) continue;
      await run('ip', [
        '-n',
        h.netns,
        'route',
        'add',
        `10.246.${p.index}.0/24`,
        'via',
        p.underlayIp,
      ]);
    }
  }
  const server = iperfServer(b.netns);
  await sleep(200);
  return {
    endpoints: { clientNs: a.netns, serverNs: b.netns, serverIp: b.ip },
    teardown: () => finish(topo, server),
  };
}

export async function vxlanByHand(topo: Topology): Promise<PathSetup> {
  const hosts = topo.hosts.slice(0, 2);
  const mac = (i: number): string => `0e:00:00:00:00:0${i}`;
  for (const h of hosts) {
    const ip = (...a: string[]): Promise<unknown> => run('ip', ['-n', h.netns, ...a]);
    await ip(
      ...['link', 'add', 'vxhand', 'type', 'vxlan', 'id', '1', 'local', h.underlayIp],
      ...['dev', 'eth0', 'dstport', '8472', 'nolearning'],
    );
    await ip('link', 'set', 'vxhand', 'address', mac(h.index), 'mtu', '1450', 'up');
    await ip('addr', 'add', `10.245.${h.index}.0/32`, 'dev', 'vxhand');
    for (const p of hosts) {
      if (p === h) continue;
      const j = p.index;
      await ip(
        'neigh',
        'add',
        `10.245.${j}.0`,
        'lladdr',
        mac(j),
        'dev',
        'vxhand',
        'nud',
        'permanent',
      );
      await run('bridge', [
        '-n',
        h.netns,
        'fdb',
        'add',
        mac(j),
        'dev',
        'vxhand',
        'dst',
        p.underlayIp,
      ]);
      await ip(
        'route',
        'add',
        `10.245.${j}.0/24`,
        'via',
        `10.245.${j}.0`,
        'dev',
        'vxhand',
        'onlink',
      );
    }
  }
  const [a, b] = await containerPair(topo, 245, 1450);
  await addFlannelRules(topo, 245);
  const server = iperfServer(b.netns);
  await sleep(200);
  return {
    endpoints: { clientNs: a.netns, serverNs: b.netns, serverIp: b.ip },
    teardown: () => finish(topo, server),
  };
}

export interface WeftPath extends PathSetup {
  readonly cluster: Cluster;
  readonly daemons: Weftd[];
  readonly binDir: string;
}

/** The network weft leases from in the bench (room for the 1000 fake peers of the RSS row). */
export const WEFT_NETWORK = '10.0.0.0/8';

/**
 * weftd with `backend` on both hosts, one container per host through the weft CNI plugin. Throws
 * NotAvailable when weftd refuses the backend (not built into this weftd yet).
 */
export async function weft(
  topo: Topology,
  etcd: EtcdFixture,
  backend: string,
  flags: readonly string[] = ['--ip-masq'],
  opts?: ClusterOptions,
): Promise<WeftPath> {
  const tmp = mkdtempSync(join(tmpdir(), `weft-bench-${backend}-`));
  const cluster: Cluster = {
    ...(opts ? { opts } : {}),
    topo,
    etcd,
    prefix: etcd.prefix(`bench-${backend}`),
    tmp,
    daemons: [],
    destroy: async () => {},
  };
  let server: ChildProcess | undefined;
  const teardown = async (): Promise<void> => {
    await Promise.all(cluster.daemons.map((d) => stopChild(d.child, 2000)));
    await finish(topo, server);
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    await putConfig(cluster, { Network: WEFT_NETWORK, SubnetLen: 24, Backend: { Type: backend } });
    const hosts = topo.hosts.slice(0, 2);
    const daemons = hosts.map((h) => startWeftd(cluster, h, flags));
    try {
      await Promise.all(daemons.map((d) => waitReady(d, 30_000)));
    } catch (err) {
      const m =
        /"msg":"(unknown backend type[^"]*|invalid network config: unknown backend[^"]*)"/.exec(
          daemons.map((d) => d.logs).join('\n'),
        );
      if (m) throw new NotAvailable(`weftd: ${m[1]!.split(':').slice(0, 2).join(':')}`);
      throw err;
    }
    const binDir = installWeftPlugin(join(tmp, 'cni-bin'));
    const cs: SimContainer[] = [];
    for (const [k, h] of hosts.entries()) {
      const ns = await createNetns(`${h.netns}w1`);
      const conf = weftConf(daemons[k]!.subnetFile, join(tmp, `h${h.index}`), 'wbench0');
      const res = await callCni({
        plugin: join(binDir, 'weft'),
        binDir,
        hostNs: h.netns,
        command: 'ADD',
        containerNs: ns,
        conf,
      });
      const c: SimContainer = { netns: ns, host: h, ip: ipv4Of(res.stdout) };
      h.containers.push(c);
      cs.push(c);
    }
    server = iperfServer(cs[1]!.netns);
    await sleep(200);
    return {
      endpoints: { clientNs: cs[0]!.netns, serverNs: cs[1]!.netns, serverIp: cs[1]!.ip },
      pids: daemons.map((d) => d.child.pid ?? 0).filter((pid) => pid > 0),
      teardown,
      cluster,
      daemons,
      binDir,
    };
  } catch (err) {
    await teardown();
    throw err;
  }
}

/** MTU weftd announced in a host's subnet.env. */
export function mtuOf(w: Weftd): number {
  return subnetEnvSettings(readFileSync(w.subnetFile, 'utf8')).mtu ?? 1500;
}

export { subnetsOf };
