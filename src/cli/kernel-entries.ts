/**
 * The kernel entries weftctl read (routes, neighbours, FDB entries of this host): a route lookup, each
 * entry as `ip` / `bridge` print it, and the commands that put one in place by hand. Shared by `peers`,
 * `doctor` and `trace`. Pure.
 */
import { cidrCovers, parseCidr } from '../ip/index.js';
import type { FdbEntry, LinkInfo, NeighEntry, RouteEntry } from '../netlink/index.js';
import type { PeerEntries } from '../backend/peer-entries.js';
import type { KernelView } from '../backend/reconcile.js';

/** The kernel state weftctl read (main routing table, neighbours and FDB of the overlay devices). */
export interface KernelState extends KernelView {
  readonly links: readonly LinkInfo[];
}

/** Longest-prefix match over the routes read (main table). */
export function lookupRoute(routes: readonly RouteEntry[], dst: string): RouteEntry | null {
  let best: RouteEntry | null = null;
  let bestLen = -1;
  for (const r of routes) {
    if (r.type !== 'UNICAST') continue;
    let len: number;
    try {
      len = r.dst === 'default' ? 0 : parseCidr(r.dst).prefixLen;
    } catch {
      continue;
    }
    if ((r.dst === 'default' || cidrCovers(r.dst, dst)) && len > bestLen) {
      best = r;
      bestLen = len;
    }
  }
  return best;
}

/** The commands that put a neighbour / FDB entry in place by hand (peers' and trace's fixes). */
export const neighFix = (ip: string, mac: string, dev: string): string =>
  `ip neigh replace ${ip} lladdr ${mac} dev ${dev} nud permanent`;
export const fdbFix = (mac: string, dev: string, dst: string): string =>
  `bridge fdb replace ${mac} dev ${dev} dst ${dst} self permanent`;

/** A planned route's `ip route` words: via the gateway, on the overlay device when it names one. */
export const routeVia = (e: PeerEntries, dev: string): string =>
  `via ${e.route.gateway}${e.neigh ? ` dev ${dev} onlink` : ''}`;

export const linkOf = (k: KernelState, index: number | null): LinkInfo | null =>
  k.links.find((l) => l.index === index) ?? null;
export const linkName = (k: KernelState, index: number | null): string =>
  linkOf(k, index)?.name ?? (index === null ? '?' : `if${index}`);

export function showRoute(k: KernelState, r: RouteEntry): string {
  const via = r.gateway ? ` via ${r.gateway}` : '';
  return `${r.dst}${via} dev ${linkName(k, r.oif)}${r.onlink ? ' onlink' : ''}`;
}

export const showNeigh = (k: KernelState, n: NeighEntry): string =>
  `${n.dst} lladdr ${n.mac ?? '(none)'} dev ${linkName(k, n.ifindex)}${n.permanent ? ' PERMANENT' : ''}`;
export const showFdb = (k: KernelState, f: FdbEntry): string =>
  `${f.mac} dev ${linkName(k, f.ifindex)} dst ${f.dst ?? '(none)'}${f.permanent ? ' permanent' : ''}`;
