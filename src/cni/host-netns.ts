/**
 * CNI_NETNS naming the host's own network namespace (`/proc/self/ns/net`, `/proc/1/ns/net`, a bind
 * mount of it). The reference bridge would then treat the host as the container: ADD puts the
 * container's interface, address and cluster route into the host, and DEL deletes the interface named
 * CNI_IFNAME there — `eth0` is the host's uplink. No runtime does this (a host-network container has no
 * CNI attachment), so ADD refuses it and DEL releases the address without touching any interface.
 */
import { readlinkSync, statSync, statfsSync } from 'node:fs';

/**
 * Why ADD refuses `path` (CNI_NETNS) and DEL only releases the address: 'host' (isHostNetns),
 * 'not-netns' (isNotNetns), or undefined.
 */
export function netnsRefusal(path: string): 'host' | 'not-netns' | undefined {
  if (path === '') return undefined;
  return isHostNetns(path) ? 'host' : isNotNetns(path) ? 'not-netns' : undefined;
}

/** True when `path` is the network namespace this process runs in (weftd's and the plugin's: the host's). */
function isHostNetns(path: string): boolean {
  try {
    const ns = statSync(path);
    const own = statSync('/proc/self/ns/net');
    return ns.dev === own.dev && ns.ino === own.ino;
  } catch {
    return false; // absent or unreadable: the delegate reports it in its own words
  }
}

const NSFS_MAGIC = 0x6e736673;

/** What a /proc/<pid>/ns/<kind> link reads: its namespace's kind and inode. */
export const NS_LINK = /^([a-z_]+):\[\d+\]$/;

/**
 * True when `path` exists but is not a network namespace: typically the empty file left under
 * /var/run/netns (tmpfs) after the namespace's bind mount went away, or a runtime's stale path; or a
 * namespace of another kind (`/proc/<pid>/ns/mnt`, `…/uts`: nsfs too, told apart by what the link
 * reads). The reference bridge then fails every ADD and DEL ("unknown FS magic on …", "failed to
 * Statfs …") before it releases the address, so a runtime's DEL retries would fail for ever; DEL
 * releases the address only, ADD refuses the path.
 */
function isNotNetns(path: string): boolean {
  try {
    if (statfsSync(path).type !== NSFS_MAGIC) return true;
  } catch {
    return false; // absent or unreadable: the delegate reports it in its own words
  }
  try {
    const kind = NS_LINK.exec(readlinkSync(path))?.[1];
    return kind !== undefined && kind !== 'net';
  } catch {
    return false; // a bind mount of a namespace (no link): taken as a network namespace
  }
}
