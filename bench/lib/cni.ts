/**
 * Calling CNI plugins like a runtime (cni-contract.md A2/A3): the plugin runs in the host's network
 * namespace with a clean environment and the config on stdin. Used for the bench's weft containers and
 * for the CNI latency row (weft vs the reference bridge called directly).
 */
import { copyFileSync, chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { run } from '../../test/helpers/exec.js';

export const REPO = resolve(import.meta.dirname, '../..');

/** Copies the built plugin bundle to `<dir>/weft`; returns `dir`. */
export function installWeftPlugin(dir: string): string {
  const bundle = join(REPO, 'dist', 'cni', 'weft.cjs');
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run \`npm run build\` first`);
  mkdirSync(dir, { recursive: true });
  copyFileSync(bundle, join(dir, 'weft'));
  chmodSync(join(dir, 'weft'), 0o755);
  return dir;
}

export interface CniCall {
  stdout: string;
  ms: number;
}

export async function callCni(o: {
  plugin: string;
  binDir: string;
  hostNs: string;
  command: 'ADD' | 'DEL';
  containerNs: string;
  conf: string;
}): Promise<CniCall> {
  const env = [
    `PATH=${process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
    `CNI_COMMAND=${o.command}`,
    `CNI_CONTAINERID=${o.containerNs}`,
    `CNI_NETNS=/var/run/netns/${o.containerNs}`,
    'CNI_IFNAME=eth0',
    `CNI_PATH=${o.binDir}:/usr/lib/cni`,
  ];
  const t0 = performance.now();
  const r = await run('ip', ['netns', 'exec', o.hostNs, 'env', '-i', ...env, o.plugin], {
    input: o.conf,
    allowFail: true,
    timeoutMs: 30_000,
  });
  const ms = performance.now() - t0;
  if (r.code !== 0) {
    throw new Error(
      `CNI ${o.command} via ${o.plugin} for ${o.containerNs} failed: ${r.stdout.trim() || r.stderr.trim()}`,
    );
  }
  return { stdout: r.stdout, ms };
}

/** First IPv4 address of an ADD result, without the prefix length. */
export function ipv4Of(result: string): string {
  const ips = (JSON.parse(result) as { ips?: { address?: string }[] }).ips ?? [];
  const a = ips.map((i) => i.address ?? '').find((x) => /^\d+\.\d+\.\d+\.\d+\//.test(x));
  if (!a) throw new Error(`CNI result has no IPv4 address: ${result.slice(0, 300)}`);
  return a.split('/')[0] ?? '';
}

/** The network config weft gets on a host whose weftd writes `subnetFile`. */
export function weftConf(subnetFile: string, stateDir: string, bridge: string): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'weft-bench',
    type: 'weft',
    subnetFile,
    dataDir: join(stateDir, 'cni'),
    ipam: { dataDir: join(stateDir, 'ipam') },
    delegate: { bridge },
  });
}

/** What weft hands the bridge plugin, written directly (the anchor for the CNI latency row). */
export function bridgeConf(subnet: string, mtu: number, stateDir: string, bridge: string): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'weft-bench-ref',
    type: 'bridge',
    bridge,
    isGateway: true,
    ipMasq: false,
    mtu,
    ipam: { type: 'host-local', ranges: [[{ subnet }]], dataDir: join(stateDir, 'ipam-ref') },
  });
}
