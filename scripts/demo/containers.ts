/**
 * Containers through the real CNI path: a namespace per container, then the `weft` plugin's ADD run
 * inside the host's namespace (as a runtime would run it there), delegating to the reference `bridge`
 * and `host-local` plugins from /usr/lib/cni. weft's dataDir and host-local's dataDir are in the demo's
 * state dir, never /var/lib/cni.
 */
import { join } from 'node:path';
import { CNI_BRIDGE, CNI_NETWORK_NAME, CONTAINERS_PER_HOST, HOSTS, type Layout } from './layout.js';
import { subnetFile } from './cluster.js';
import { run } from './shell.js';

export interface DemoContainer {
  readonly name: string;
  readonly host: number;
  readonly netns: string;
  readonly ip: string;
}

export function netconf(l: Layout, host: number): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: CNI_NETWORK_NAME,
    type: 'weft',
    subnetFile: subnetFile(l, host),
    dataDir: join(l.hostDir(host), 'cni'),
    ipam: { dataDir: join(l.hostDir(host), 'ipam') },
    delegate: { bridge: CNI_BRIDGE },
  });
}

/** Runs the weft plugin in `host`'s namespace with a clean environment, like a runtime does. */
export async function callWeft(
  l: Layout,
  host: number,
  command: 'ADD' | 'DEL',
  containerNs: string,
): Promise<string> {
  const env = [
    `PATH=${process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
    `CNI_COMMAND=${command}`,
    `CNI_CONTAINERID=${containerNs}`,
    `CNI_NETNS=/var/run/netns/${containerNs}`,
    'CNI_IFNAME=eth0',
    `CNI_PATH=${l.cniBinDir}:/usr/lib/cni`,
  ];
  const r = await run(
    'ip',
    ['netns', 'exec', l.hostNs(host), 'env', '-i', ...env, join(l.cniBinDir, 'weft')],
    { input: netconf(l, host), allowFail: true, timeoutMs: 20_000 },
  );
  if (r.code !== 0) {
    throw new Error(
      `CNI ${command} for ${containerNs} failed (exit ${r.code}): ${r.stdout.trim() || r.stderr.trim()}`,
    );
  }
  return r.stdout;
}

/** The container's IPv4 address from an ADD result (`ips[].address`, without the prefix length). */
export function addressFromResult(stdout: string, what: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new Error(`CNI ADD for ${what} printed no JSON result: ${stdout.slice(0, 300)}`);
  }
  const ips = (parsed as { ips?: { address?: unknown }[] }).ips ?? [];
  const v4 = ips
    .map((i) => (typeof i.address === 'string' ? i.address : ''))
    .find((a) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(a));
  if (!v4)
    throw new Error(`CNI ADD result for ${what} has no IPv4 address: ${stdout.slice(0, 300)}`);
  return v4.split('/')[0] ?? '';
}

/** CONTAINERS_PER_HOST containers on every host, hosts in parallel (containers of one host in order). */
export async function startContainers(l: Layout): Promise<DemoContainer[]> {
  const perHost = await Promise.all(
    Array.from({ length: HOSTS }, async (_, k) => {
      const host = k + 1;
      const out: DemoContainer[] = [];
      for (let n = 1; n <= CONTAINERS_PER_HOST; n++) {
        const ns = l.containerNs(host, n);
        await run('ip', ['netns', 'add', ns]);
        await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
        const ip = addressFromResult(await callWeft(l, host, 'ADD', ns), ns);
        out.push({ name: `h${host}-c${n}`, host, netns: ns, ip });
      }
      return out;
    }),
  );
  return perHost.flat();
}

/** Best-effort CNI DEL for every container namespace that still exists (used by `down`). */
export async function deleteContainers(l: Layout, present: readonly string[]): Promise<void> {
  await Promise.all(
    present.map(async (ns) => {
      const m = /-h(\d+)-c\d+$/.exec(ns);
      if (!m) return;
      await callWeft(l, Number(m[1]), 'DEL', ns).catch(() => undefined);
    }),
  );
}
