/**
 * Capability checks for privileged tests (docs/design.md C15). Locally a missing capability skips the suite
 * with a reason; under CI=true it fails instead, because in CI every test must run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const inCI = process.env['CI'] === 'true';

function haveCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const checks: Record<string, () => string | undefined> = {
  root: () => (process.getuid?.() === 0 ? undefined : 'needs root (CAP_NET_ADMIN)'),
  netns: () => (haveCommand('ip') ? undefined : 'needs iproute2 (`ip`)'),
  etcd: () =>
    process.env['ETCD_ENDPOINTS'] || haveCommand('etcd')
      ? undefined
      : 'needs Debian etcd-server (`apt-get install etcd-server`) or ETCD_ENDPOINTS',
  etcdctl: () => (haveCommand('etcdctl') ? undefined : 'needs etcd-client (`etcdctl`)'),
  tun: () => (existsSync('/dev/net/tun') ? undefined : 'needs /dev/net/tun'),
  ping: () => (haveCommand('ping') ? undefined : 'needs iputils-ping'),
  cniPlugins: () =>
    existsSync('/usr/lib/cni/bridge') || existsSync('/opt/cni/bin/bridge')
      ? undefined
      : 'needs containernetworking-plugins',
  iperf3: () => (haveCommand('iperf3') ? undefined : 'needs iperf3'),
  nft: () => (haveCommand('nft') ? undefined : 'needs nftables (`nft`)'),
  openssl: () => (haveCommand('openssl') ? undefined : 'needs openssl'),
  wireguardGo: () =>
    haveCommand('wireguard-go') && haveCommand('wg')
      ? undefined
      : 'needs wireguard-go and wireguard-tools (`apt-get install wireguard-go wireguard-tools`)',
  tcpdump: () => (haveCommand('tcpdump') ? undefined : 'needs tcpdump'),
  strace: () => (haveCommand('strace') ? undefined : 'needs strace'),
};

export type Capability =
  | 'root'
  | 'netns'
  | 'etcd'
  | 'etcdctl'
  | 'tun'
  | 'ping'
  | 'cniPlugins'
  | 'iperf3'
  | 'nft'
  | 'openssl'
  | 'wireguardGo'
  | 'tcpdump'
  | 'strace';

/** The reasons the listed capabilities are missing (empty when all are present). */
export function missing(...caps: Capability[]): string[] {
  return caps.map((c) => checks[c]?.()).filter((r): r is string => r !== undefined);
}

/**
 * Returns true when the suite may run. When something is missing: throws under CI=true, else returns
 * false (use with `describe.skipIf(!requireCaps(...))`) and prints the reason once.
 */
export function requireCaps(...caps: Capability[]): boolean {
  const reasons = missing(...caps);
  if (reasons.length === 0) return true;
  const msg = `test needs: ${reasons.join('; ')}`;
  if (inCI) throw new Error(`${msg} (CI=true: a missing capability is a failure, not a skip)`);
  console.warn(`skipping: ${msg}`);
  return false;
}
