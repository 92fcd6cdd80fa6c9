/**
 * CNI_NETNS naming the host's own network namespace (`/proc/self/ns/net`, `/proc/1/ns/net`, a bind
 * mount of it). The reference bridge would then treat the host as the container: ADD puts the
 * container's interface, address and cluster route into the host, and DEL deletes the interface named
 * CNI_IFNAME there — `eth0` is the host's uplink. No runtime does this (a host-network container has no
 * CNI attachment), so ADD refuses it and DEL releases the address without touching any interface.
 */
import { statSync, statfsSync } from 'node:fs';

/** True when `path` is the network namespace this process runs in (weftd's and the plugin's: the host's). */
export function isHostNetns(path: string): boolean {
  if (path === '') return false;
  try {
    const ns = statSync(path);
    const own = statSync('/proc/self/ns/net');
    return ns.dev === own.dev && ns.ino === own.ino;
  } catch {
    return false; // absent or unreadable: the delegate reports it in its own words
  }
}

const NSFS_MAGIC = 0x6e736673;

/**
 * True when `path` exists but is not a network namespace: typically the empty file left under
 * /var/run/netns (tmpfs) after the namespace's bind mount went away, or a runtime's stale path. The
 * reference bridge then fails every DEL ("unknown FS magic on …") before it releases the address, so a
 * runtime's DEL retries would fail for ever; DEL releases the address only, ADD refuses the path.
 */
export function isNotNetns(path: string): boolean {
  if (path === '') return false;
  try {
    return statfsSync(path).type !== NSFS_MAGIC;
  } catch {
    return false; // absent or unreadable: the delegate reports it in its own words
  }
}
