/**
 * weftd reads `<prefix>/config` once, at start (flannel does too): a changed Network, SubnetLen,
 * EnableIPv6 or backend takes effect only when weftd restarts, and hosts that restarted meanwhile no
 * longer match the others (another backend type's leases are ignored, a subnet outside the old Network
 * is refused). weftd keeps running on what it started with, so the dataplane of healthy peers is never
 * torn down by an edit, and says so: every `--resync-period` it re-reads the config and logs what
 * differs (once per distinct config) with the fix.
 */
import type { NetworkConfig } from '../subnet/manager.js';

const FIELDS = [
  'enableIPv4',
  'enableIPv6',
  'network',
  'subnetLen',
  'subnetMin',
  'subnetMax',
  'ipv6Network',
  'ipv6SubnetLen',
  'ipv6SubnetMin',
  'ipv6SubnetMax',
] as const;

/** `field: running → in etcd` for each field that differs (the backend compared whole). */
export function configChanges(running: NetworkConfig, now: NetworkConfig): string[] {
  const out: string[] = [];
  for (const f of FIELDS) {
    if (running[f] !== now[f]) out.push(`${f}: ${String(running[f])} → ${String(now[f])}`);
  }
  if (running.backend.type.toLowerCase() !== now.backend.type.toLowerCase()) {
    out.push(`Backend.Type: ${running.backend.type} → ${now.backend.type}`);
  } else {
    // names only: a value may be a secret (wireguard's PSK)
    const a = running.backend.raw;
    const b = now.backend.raw;
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter(
      (k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]),
    );
    if (keys.length > 0) out.push(`Backend keys changed: ${keys.join(', ')}`);
  }
  return out;
}
