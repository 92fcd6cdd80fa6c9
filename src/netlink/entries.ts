/**
 * Route, neighbour and FDB messages as weft's plain entries: one reading for the dumps (rtnetlink.ts)
 * and the entry events (entry-events.ts), so that an event's entry compares equal to a dumped one.
 */
import type { rt } from './package.js';
import { bytesToIp, bytesToMac, type IpFamily } from './addr.js';
import type { FdbEntry, NeighEntry, RouteEntry } from './ops.js';

const AF_INET6 = 10;
const RTNH_F_ONLINK = 4;

export const famOf = (n: number | undefined): IpFamily => (n === AF_INET6 ? 6 : 4);

/** The table a route message is in (RTA_TABLE, else rtm_table). */
export const routeTable = (m: rt.RouteMessage): number => m.attrs.table ?? m.data.table ?? 0;

export function toRouteEntry(m: rt.RouteMessage, family: IpFamily): RouteEntry {
  const zero = family === 4 ? '0.0.0.0' : '::';
  return {
    family,
    dst: `${m.attrs.dst ? bytesToIp(m.attrs.dst) : zero}/${m.data.dstLen ?? 0}`,
    gateway: m.attrs.gateway ? bytesToIp(m.attrs.gateway) : null,
    oif: m.attrs.oif ?? null,
    onlink: ((m.data.flags?.__unknown ?? 0) & RTNH_F_ONLINK) !== 0,
    table: routeTable(m),
    protocol: String(m.data.protocol ?? ''),
    type: String(m.data.type ?? ''),
  };
}

/** An IPv4/IPv6 neighbour; null without a destination. */
export function toNeighEntry(m: rt.NeighborMessage): NeighEntry | null {
  if (!m.attrs.dst) return null;
  return {
    family: famOf(m.data.family),
    ifindex: m.data.ifindex ?? 0,
    dst: bytesToIp(m.attrs.dst),
    mac: m.attrs.lladdr && m.attrs.lladdr.length === 6 ? bytesToMac(m.attrs.lladdr) : null,
    permanent: m.data.state?.permanent === true,
  };
}

/** An AF_BRIDGE neighbour (FDB entry); null without a MAC. */
export function toFdbEntry(m: rt.NeighborMessage): FdbEntry | null {
  if (!m.attrs.lladdr || m.attrs.lladdr.length !== 6) return null;
  return {
    ifindex: m.data.ifindex ?? 0,
    mac: bytesToMac(m.attrs.lladdr),
    dst:
      m.attrs.dst && (m.attrs.dst.length === 4 || m.attrs.dst.length === 16)
        ? bytesToIp(m.attrs.dst)
        : null,
    permanent: m.data.state?.permanent === true,
  };
}
