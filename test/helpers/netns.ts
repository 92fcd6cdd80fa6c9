/**
 * Network-namespace test topology (README "Tests": all test traffic stays inside namespaces the tests create): N simulated hosts, each its own
 * netns with `eth0` on 198.18.0.0/24, joined by a bridge in an underlay netns that itself holds
 * 198.18.0.254 (where an etcd for daemons in host namespaces listens). Optional "container" namespaces
 * hang off a bridge in their host's netns.
 *
 *   [<p>-h1 eth0 198.18.0.1]--vh1--+
 *   [<p>-h2 eth0 198.18.0.2]--vh2--+-- br0 198.18.0.254 in [<p>-ul]
 *   [<p>-h3 eth0 198.18.0.3]--vh3--+
 *
 * Nothing is created in the root namespace: links are created inside the namespaces (`ip -n`). Names
 * carry a per-run prefix `weft-t<pid>-<n>` so that leftovers of a killed run are recognised (the pid is
 * dead) and removed by the next run's global setup, and so parallel runs never touch each other.
 */
import { execFileSync } from 'node:child_process';
import { run, nsRun, words } from './exec.js';

export const NETNS_PREFIX = 'weft-t';
const runId = process.env['WEFT_TEST_RUN_ID'] ?? String(process.pid);
let counter = 0;

/** A fresh unique name prefix for one topology or netns in this run. */
export function uniquePrefix(): string {
  counter++;
  return `${NETNS_PREFIX}${runId}-${process.pid.toString(36)}${counter}`;
}

const live = new Set<string>();

export async function createNetns(name: string): Promise<string> {
  await run('ip', ['netns', 'add', name]);
  live.add(name);
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

/** Kills every process still inside `name`, then deletes it. Never throws for an absent netns. */
export function deleteNetnsSync(name: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' })
      .split(/\s+/)
      .filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  } catch {
    /* netns gone */
  }
  try {
    execFileSync('ip', ['netns', 'delete', name], { stdio: 'ignore' });
  } catch {
    /* already gone */
  }
  live.delete(name);
}

export async function deleteNetns(name: string): Promise<void> {
  deleteNetnsSync(name);
}

export function listNetns(): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter(Boolean);
  } catch {
    return [];
  }
}

/** Namespaces this worker created and has not deleted. */
export function liveNetns(): string[] {
  return [...live];
}

// Interrupted runs: delete what this worker created even on Ctrl-C or an uncaught error.
const cleanupOnExit = (): void => {
  for (const ns of [...live]) deleteNetnsSync(ns);
};
process.once('exit', cleanupOnExit);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    cleanupOnExit();
    process.kill(process.pid, sig);
  });
}

export interface SimContainer {
  readonly netns: string;
  readonly host: SimHost;
  readonly ip: string;
  readonly ip6?: string;
}

export interface SimHost {
  readonly index: number;
  /** netns name */
  readonly netns: string;
  /** underlay interface inside the host netns */
  readonly iface: 'eth0';
  readonly underlayIp: string;
  readonly underlayIp6: string;
  readonly containers: SimContainer[];
}

export interface Topology {
  readonly prefix: string;
  readonly underlayNetns: string;
  /** The underlay netns's own address on the bridge (etcd for host daemons listens here). */
  readonly underlayGatewayIp: string;
  readonly hosts: SimHost[];
  /**
   * Adds a container netns to `host`: a veth into bridge `bridge` (created on first use with the
   * gateway address), the container address and a default route via the gateway.
   */
  addContainer(host: SimHost, opts: ContainerOptions): Promise<SimContainer>;
  destroy(): Promise<void>;
}

export interface ContainerOptions {
  /** e.g. '10.244.1.2/24' */
  cidr: string;
  /** e.g. '10.244.1.1' (added to the bridge as `<gateway>/<len>` if not there yet) */
  gateway: string;
  cidr6?: string;
  gateway6?: string;
  bridge?: string;
  mtu?: number;
}

export interface TopologyOptions {
  hosts: number;
  /** MTU of the underlay links (default 1500). */
  mtu?: number;
  /** Also give hosts IPv6 underlay addresses fd18::<i>/64 (default true). */
  ipv6?: boolean;
}

export async function createTopology(opts: TopologyOptions): Promise<Topology> {
  const prefix = uniquePrefix();
  const mtu = String(opts.mtu ?? 1500);
  const ul = await createNetns(`${prefix}-ul`);
  const hosts: SimHost[] = [];
  const topo: Topology = {
    prefix,
    underlayNetns: ul,
    underlayGatewayIp: '198.18.0.254',
    hosts,
    addContainer: (host, c) => addContainer(host, c),
    destroy: async () => {
      for (const h of hosts) for (const c of h.containers) deleteNetnsSync(c.netns);
      for (const h of hosts) deleteNetnsSync(h.netns);
      deleteNetnsSync(ul);
    },
  };
  try {
    await run('ip', ['-n', ul, 'link', 'add', 'br0', 'mtu', mtu, 'type', 'bridge']);
    await run('ip', ['-n', ul, 'addr', 'add', '198.18.0.254/24', 'dev', 'br0']);
    await run('ip', ['-n', ul, 'link', 'set', 'br0', 'up']);
    for (let i = 1; i <= opts.hosts; i++) {
      const ns = await createNetns(`${prefix}-h${i}`);
      await run(
        'ip',
        words(
          `-n ${ul} link add vh${i} mtu ${mtu} type veth peer name eth0 mtu ${mtu} netns ${ns}`,
        ),
      );
      await run('ip', ['-n', ul, 'link', 'set', `vh${i}`, 'master', 'br0', 'up']);
      await run('ip', ['-n', ns, 'addr', 'add', `198.18.0.${i}/24`, 'dev', 'eth0']);
      if (opts.ipv6 !== false) {
        await run('ip', ['-n', ns, 'addr', 'add', `fd18::${i}/64`, 'dev', 'eth0', 'nodad']);
      }
      await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      await nsRun(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
      hosts.push({
        index: i,
        netns: ns,
        iface: 'eth0',
        underlayIp: `198.18.0.${i}`,
        underlayIp6: `fd18::${i}`,
        containers: [],
      });
    }
  } catch (err) {
    await topo.destroy();
    throw err;
  }
  return topo;
}

async function addContainer(host: SimHost, c: ContainerOptions): Promise<SimContainer> {
  const bridge = c.bridge ?? 'cbr0';
  const n = host.containers.length + 1;
  const ns = await createNetns(`${host.netns}c${n}`);
  const hostSide = `veth${host.index}c${n}`;
  const links = (await run('ip', ['-n', host.netns, '-o', 'link', 'show'])).stdout;
  if (!links.includes(` ${bridge}:`)) {
    await run('ip', ['-n', host.netns, 'link', 'add', bridge, 'type', 'bridge']);
    await run('ip', ['-n', host.netns, 'link', 'set', bridge, 'up']);
  }
  const len = c.cidr.split('/')[1];
  const addrs = (await run('ip', ['-n', host.netns, '-o', 'addr', 'show', 'dev', bridge])).stdout;
  if (!addrs.includes(` ${c.gateway}/`)) {
    await run('ip', ['-n', host.netns, 'addr', 'add', `${c.gateway}/${len}`, 'dev', bridge]);
  }
  if (c.gateway6 && c.cidr6 && !addrs.includes(` ${c.gateway6}/`)) {
    const len6 = c.cidr6.split('/')[1];
    await run('ip', words(`-n ${host.netns} addr add ${c.gateway6}/${len6} dev ${bridge} nodad`));
  }
  const mtuArgs = c.mtu ? ['mtu', String(c.mtu)] : [];
  await run('ip', [
    '-n',
    host.netns,
    'link',
    'add',
    hostSide,
    ...mtuArgs,
    'type',
    'veth',
    'peer',
    'name',
    'eth0',
    ...mtuArgs,
    'netns',
    ns,
  ]);
  await run('ip', ['-n', host.netns, 'link', 'set', hostSide, 'master', bridge, 'up']);
  await run('ip', ['-n', ns, 'addr', 'add', c.cidr, 'dev', 'eth0']);
  await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  await run('ip', ['-n', ns, 'route', 'add', 'default', 'via', c.gateway]);
  if (c.cidr6 && c.gateway6) {
    await run('ip', ['-n', ns, 'addr', 'add', c.cidr6, 'dev', 'eth0', 'nodad']);
    await run('ip', ['-n', ns, '-6', 'route', 'add', 'default', 'via', c.gateway6]);
  }
  const ip = c.cidr.split('/')[0] ?? '';
  const ctr: SimContainer = c.cidr6
    ? { netns: ns, host, ip, ip6: c.cidr6.split('/')[0] ?? '' }
    : { netns: ns, host, ip };
  host.containers.push(ctr);
  return ctr;
}

/** `ping` from inside `ns`; resolves true when all `count` replies arrived. */
export async function ping(ns: string, dst: string, count = 2, timeoutSec = 2): Promise<boolean> {
  const r = await nsRun(
    ns,
    'ping',
    ['-c', String(count), '-i', '0.2', '-W', String(timeoutSec), '-q', dst],
    {
      allowFail: true,
      timeoutMs: (count * 0.2 + timeoutSec + 5) * 1000,
    },
  );
  return r.code === 0;
}
