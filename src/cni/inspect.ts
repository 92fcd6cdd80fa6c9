/**
 * Reading what is really configured inside a container netns, for CHECK (docs/design.md C14: the work runs in a
 * child, `nsenter --net=<path> ip -j …`, so this process never switches namespace and loads no native code).
 */
import { existsSync } from 'node:fs';
import { lazySpawn } from './lazy.js';
import { CniCode, CniError } from './errors.js';

export interface NetnsLink {
  readonly exists: boolean;
  readonly mac: string | undefined;
  readonly mtu: number | undefined;
  /** `addr/prefix` of every address on the link. */
  readonly addresses: readonly string[];
}
export interface NetnsRoute {
  /** `default` rendered as 0.0.0.0/0 or ::/0; host routes with their /32 or /128. */
  readonly dst: string;
  readonly gw: string | undefined;
  readonly dev: string | undefined;
}
export interface NetnsSnapshot {
  readonly link: NetnsLink;
  readonly routes: readonly NetnsRoute[];
}

export type Inspector = (netnsPath: string, ifname: string) => Promise<NetnsSnapshot>;

const INSPECT_TIMEOUT_MS = 30_000;

const firstExisting = (cands: string[]): string => cands.find((c) => existsSync(c)) ?? cands[0]!;

function run(
  cmd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = lazySpawn()(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new CniError(CniCode.IoFailure, `cannot run ${cmd}: ${err.message}`));
    });
    // A hung `ip` must not hold the call (inside weftd: the container's lock) for ever.
    const timer = setTimeout(() => child.kill('SIGKILL'), INSPECT_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr: stderr || (code === null ? 'timed out' : '') });
    });
  });
}

type IpAddr = {
  ifname?: string;
  address?: string;
  mtu?: number;
  addr_info?: { local?: string; prefixlen?: number }[];
};
type IpRoute = { dst?: string; gateway?: string; dev?: string };

function normaliseDst(dst: string | undefined, family: 4 | 6): string {
  if (dst === undefined || dst === 'default') return family === 4 ? '0.0.0.0/0' : '::/0';
  if (dst.includes('/')) return dst;
  return `${dst}/${family === 4 ? 32 : 128}`;
}

/** One child: addresses of `ifname` and the main-table routes of both families inside the netns. */
export const nsenterInspector: Inspector = async (netnsPath, ifname) => {
  if (!existsSync(netnsPath)) {
    throw new CniError(CniCode.UnknownContainer, `network namespace ${netnsPath} does not exist`);
  }
  const nsenter = firstExisting(['/usr/bin/nsenter', '/bin/nsenter', '/usr/sbin/nsenter']);
  const ip = firstExisting(['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip']);
  const script = `"$1" -j addr show; echo; "$1" -j -4 route show table main; echo; "$1" -j -6 route show table main`;
  const r = await run(nsenter, [`--net=${netnsPath}`, '/bin/sh', '-c', script, 'sh', ip]);
  if (r.code !== 0) {
    throw new CniError(
      CniCode.IoFailure,
      `cannot inspect ${netnsPath}: ${r.stderr.trim() || `exit ${r.code}`}`,
    );
  }
  const parts = r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  let addrs: IpAddr[];
  let r4: IpRoute[];
  let r6: IpRoute[];
  try {
    [addrs, r4, r6] = parts.map((p) => JSON.parse(p) as unknown) as [
      IpAddr[],
      IpRoute[],
      IpRoute[],
    ];
  } catch (err) {
    throw new CniError(CniCode.IoFailure, `cannot parse ip -j output: ${(err as Error).message}`);
  }
  const l = (addrs ?? []).find((a) => a.ifname === ifname);
  const link: NetnsLink = l
    ? {
        exists: true,
        mac: l.address,
        mtu: l.mtu,
        addresses: (l.addr_info ?? [])
          .filter((a) => a.local !== undefined && a.prefixlen !== undefined)
          .map((a) => `${a.local}/${a.prefixlen}`),
      }
    : { exists: false, mac: undefined, mtu: undefined, addresses: [] };
  const routes = [
    ...(r4 ?? []).map((x) => ({ dst: normaliseDst(x.dst, 4), gw: x.gateway, dev: x.dev })),
    ...(r6 ?? []).map((x) => ({ dst: normaliseDst(x.dst, 6), gw: x.gateway, dev: x.dev })),
  ];
  return { link, routes };
};
