/**
 * Calling CNI plugins like a runtime (docs/cni-contract.md A2/A3): the plugin runs in the host's network
 * namespace with a clean environment and the config on stdin. Used for the bench's weft containers and
 * for the CNI latency row (weft vs the reference bridge called directly).
 */
import { copyFileSync, chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { run } from '../../test/helpers/exec.js';
import { createNetns, deleteNetns } from '../../test/helpers/netns.js';

export const REPO = resolve(import.meta.dirname, '../..');

/**
 * Installs the built plugin like `npm run install:cni`: the shim (cni-shim/build/weft-cni-shim) as
 * `<dir>/weft`, the full plugin bundle as `<dir>/weft-full`; returns `dir`.
 */
export function installWeftPlugin(dir: string): string {
  const bundle = join(REPO, 'dist', 'cni', 'weft.cjs');
  const shim = join(REPO, 'cni-shim', 'build', 'weft-cni-shim');
  for (const f of [bundle, shim])
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`npm run build\` first`);
  mkdirSync(dir, { recursive: true });
  copyFileSync(shim, join(dir, 'weft'));
  copyFileSync(bundle, join(dir, 'weft-full'));
  for (const f of ['weft', 'weft-full']) chmodSync(join(dir, f), 0o755);
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

/** weftd's CNI socket as the e2e harness places it (`--cni-socket`, next to its subnet file). */
export const cniSocketOf = (subnetFile: string): string => join(dirname(subnetFile), 'cni.sock');

/** The network config weft gets on a host whose weftd writes `subnetFile` (and serves `daemonSocket`). */
export function weftConf(
  subnetFile: string,
  stateDir: string,
  bridge: string,
  daemonSocket = cniSocketOf(subnetFile),
): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'weft-bench',
    type: 'weft',
    daemonSocket,
    subnetFile,
    dataDir: join(stateDir, 'cni'),
    ipam: { dataDir: join(stateDir, 'ipam') },
    delegate: { bridge },
  });
}

/** What weft hands the bridge plugin, written directly (the anchor for the CNI latency row). */
export function bridgeConf(
  subnet: string,
  mtu: number,
  stateDir: string,
  bridge: string,
  routes: { dst: string; gw: string }[] = [],
): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'weft-bench-ref',
    type: 'bridge',
    bridge,
    isGateway: true,
    ipMasq: false,
    mtu,
    ipam: {
      type: 'host-local',
      ranges: [[{ subnet }]],
      ...(routes.length > 0 ? { routes } : {}),
      dataDir: join(stateDir, 'ipam-ref'),
    },
  });
}

/** Per-call wall times (ms) of `cniRounds`: weft ADD/DEL and reference bridge ADD/DEL. */
export interface CniSamples {
  weftAdd: number[];
  weftDel: number[];
  refAdd: number[];
  refDel: number[];
}

/**
 * `n` interleaved rounds on host netns `hostNs`: per round and per plugin (weft, then the reference
 * bridge called directly with `refConf`), a fresh container netns `<nsPrefix><w|b><i>`, ADD, DEL,
 * netns deleted. Used by the control-plane row of `npm run bench` and by `npm run bench:cni`.
 */
export async function cniRounds(o: {
  hostNs: string;
  binDir: string;
  weftConf: string;
  refConf: string;
  n: number;
  nsPrefix: string;
  /** weft's ADD and DEL executables (default `<binDir>/weft` for both). */
  weftAddPlugin?: string;
  weftDelPlugin?: string;
}): Promise<CniSamples> {
  const t: CniSamples = { weftAdd: [], weftDel: [], refAdd: [], refDel: [] };
  for (let i = 0; i < o.n; i++) {
    for (const which of ['weft', 'bridge'] as const) {
      const ns = await createNetns(`${o.nsPrefix}${which[0]}${i}`);
      try {
        const call = (command: 'ADD' | 'DEL'): Promise<CniCall> =>
          callCni({
            plugin:
              which === 'bridge'
                ? '/usr/lib/cni/bridge'
                : ((command === 'ADD' ? o.weftAddPlugin : o.weftDelPlugin) ??
                  join(o.binDir, 'weft')),
            binDir: o.binDir,
            hostNs: o.hostNs,
            command,
            containerNs: ns,
            conf: which === 'weft' ? o.weftConf : o.refConf,
          });
        const add = await call('ADD');
        const del = await call('DEL');
        (which === 'weft' ? t.weftAdd : t.refAdd).push(add.ms);
        (which === 'weft' ? t.weftDel : t.refDel).push(del.ms);
      } finally {
        await deleteNetns(ns);
      }
    }
  }
  return t;
}
