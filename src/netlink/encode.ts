/**
 * Hand-written encoders for the three messages weft sends by the thousand (route, neighbour, FDB
 * entry): fixed layouts from <linux/rtnetlink.h> and <linux/neighbour.h>, written straight into the
 * datagram buffer (no per-message Buffer, no attribute objects). Addresses in canonical form (what weft
 * produces) take a fast path; anything else goes through addr.ts, which validates and throws TypeError.
 * Everything other than these three kinds of message still goes through the `netlink` package.
 */
import { canonicalMacInto, tryParseIp4 } from '../ip/index.js';
import { cidrParts, ipToBytes, macToBytes } from './addr.js';
import type { FdbSpec, Mutation, NeighSpec, RouteSpec } from './ops.js';

export const NLMSG_ERROR = 2;
const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const RTM_NEWNEIGH = 28;
const RTM_DELNEIGH = 29;
const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
const NLM_F_REPLACE = 0x100;
const NLM_F_CREATE = 0x400;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_BRIDGE = 7;
const RTPROT_STATIC = 4;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RT_SCOPE_NOWHERE = 255;
const RTN_UNICAST = 1;
const RTNH_F_ONLINK = 4;
const RT_TABLE_MAIN = 254;
const RT_TABLE_UNSPEC = 0;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_TABLE = 15;
const NDA_DST = 1;
const NDA_LLADDR = 2;
const NUD_PERMANENT = 0x80;
const NTF_SELF = 0x02;

/** Upper bound of one encoded message (an IPv6 route with table, gateway and oif: 84 bytes). */
export const MAX_MESSAGE_BYTES = 96;

/**
 * The value of the canonical dotted quad in `s` from `start` to `end` (exclusive), or -1 for anything
 * else (leading zeros, too few or many parts, other characters), so the caller can take the validating
 * path.
 */
function ip4At(s: string, start: number, end: number): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let parts = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || parts === 3) return -1;
      value = value * 256 + octet;
      parts++;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1; // leading zero: not canonical
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else return -1;
  }
  if (digits === 0 || parts !== 3) return -1;
  return value * 256 + octet;
}

/** Writes the uint32 `v` as 4 bytes in network order at `off`. */
function put4(b: Buffer, off: number, v: number): void {
  b[off] = v >>> 24;
  b[off + 1] = (v >>> 16) & 255;
  b[off + 2] = (v >>> 8) & 255;
  b[off + 3] = v & 255;
}

/**
 * Writes a canonical dotted quad ('10.5.1.0') as 4 bytes at `off`; returns false (nothing written)
 * for anything else, so the caller can take the validating path.
 */
function writeIp4Fast(b: Buffer, off: number, ip: string): boolean {
  const v = ip4At(ip, 0, ip.length);
  if (v < 0) return false;
  put4(b, off, v);
  return true;
}

/** Little-endian stores as plain byte writes: Buffer's write*LE methods each run several checking calls
 *  before V8 optimizes them, which the (cold) first reconcile of thousands of peers pays per field. */
function u16(b: Buffer, off: number, v: number): void {
  b[off] = v & 255;
  b[off + 1] = (v >>> 8) & 255;
}

function u32(b: Buffer, off: number, v: number): void {
  b[off] = v & 255;
  b[off + 1] = (v >>> 8) & 255;
  b[off + 2] = (v >>> 16) & 255;
  b[off + 3] = (v >>> 24) & 255;
}

/** Writes an address attribute (type, address) at `off`; returns the offset after it. */
function putIpAttr(b: Buffer, off: number, type: number, ip: string): number {
  if (writeIp4Fast(b, off + 4, ip)) {
    u16(b, off, 8);
    u16(b, off + 2, type);
    return off + 8;
  }
  const bytes = ipToBytes(ip);
  u16(b, off, 4 + bytes.length);
  u16(b, off + 2, type);
  bytes.copy(b, off + 4);
  return off + 4 + bytes.length; // 4 or 16 bytes: already aligned
}

/** NDA_LLADDR with a MAC; canonical lower-case colon form fast, anything else validated. */
function putMacAttr(b: Buffer, off: number, mac: string): number {
  u16(b, off, 10);
  u16(b, off + 2, NDA_LLADDR);
  if (!canonicalMacInto(mac, b, off + 4)) macToBytes(mac).copy(b, off + 4);
  b[off + 10] = 0;
  b[off + 11] = 0;
  return off + 12;
}

function putU32Attr(b: Buffer, off: number, type: number, v: number): number {
  u16(b, off, 8);
  u16(b, off + 2, type);
  u32(b, off + 4, v >>> 0);
  return off + 8;
}

/** nlmsghdr at `start` (length written by `finish`): a delete, or a create-or-replace. */
function header(
  b: Buffer,
  start: number,
  type: number,
  del: boolean,
  ack: number,
  seq: number,
  port: number,
): void {
  u16(b, start + 4, type);
  u16(b, start + 6, (del ? 0 : NLM_F_CREATE | NLM_F_REPLACE) | ack | NLM_F_REQUEST);
  u32(b, start + 8, seq >>> 0);
  u32(b, start + 12, port >>> 0);
}

function finish(b: Buffer, start: number, end: number): number {
  u32(b, start, end - start);
  return end;
}

/** The 12-byte ndmsg at `off`. */
function ndmsg(
  b: Buffer,
  off: number,
  family: number,
  ifindex: number,
  state: number,
  flags: number,
): number {
  for (let i = 1; i < 12; i++) b[off + i] = 0;
  b[off] = family;
  u32(b, off + 4, ifindex);
  u16(b, off + 8, state);
  b[off + 10] = flags;
  return off + 12;
}

function route(
  b: Buffer,
  start: number,
  r: RouteSpec,
  del: boolean,
  ack: number,
  seq: number,
  port: number,
): number {
  const slash = r.dst.indexOf('/');
  let dst = slash > 0 ? r.dst.slice(0, slash) : '';
  let len = slash > 0 ? Number(r.dst.slice(slash + 1)) : NaN;
  let v4 =
    Number.isInteger(len) && len >= 0 && len <= 32 && /^\d{1,2}$/.test(r.dst.slice(slash + 1));
  if (!v4 || !writeIp4Fast(b, start + 32, dst)) {
    const c = cidrParts(r.dst); // validates (TypeError) and handles IPv6
    dst = c.ip;
    len = c.len;
    v4 = c.family === 4;
  }
  const table = r.table ?? RT_TABLE_MAIN;
  header(b, start, del ? RTM_DELROUTE : RTM_NEWROUTE, del, ack, seq, port);
  const f = start + 16;
  for (let i = 0; i < 12; i++) b[f + i] = 0;
  b[f] = v4 ? AF_INET : AF_INET6;
  b[f + 1] = len;
  b[f + 4] = table > 255 ? RT_TABLE_UNSPEC : table;
  if (del) {
    b[f + 6] = RT_SCOPE_NOWHERE;
  } else {
    b[f + 5] = RTPROT_STATIC;
    b[f + 6] = r.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    b[f + 7] = RTN_UNICAST;
    u32(b, f + 8, r.onlink ? RTNH_F_ONLINK : 0);
  }
  let off = putIpAttr(b, f + 12, RTA_DST, dst);
  if (table > 255) off = putU32Attr(b, off, RTA_TABLE, table);
  if (r.gateway) off = putIpAttr(b, off, RTA_GATEWAY, r.gateway);
  if (r.oif) off = putU32Attr(b, off, RTA_OIF, r.oif);
  return finish(b, start, off);
}

function neigh(
  b: Buffer,
  start: number,
  n: Pick<NeighSpec, 'ifindex' | 'dst'> & { mac?: string },
  del: boolean,
  ack: number,
  seq: number,
  port: number,
): number {
  // The address first: its family goes into the fixed header.
  const at = putIpAttr(b, start + 28, NDA_DST, n.dst);
  const family = at - (start + 28) === 8 ? AF_INET : AF_INET6;
  header(b, start, del ? RTM_DELNEIGH : RTM_NEWNEIGH, del, ack, seq, port);
  ndmsg(b, start + 16, family, n.ifindex, del ? 0 : NUD_PERMANENT, 0);
  return finish(b, start, del ? at : putMacAttr(b, at, n.mac!));
}

function fdb(
  b: Buffer,
  start: number,
  e: FdbSpec,
  del: boolean,
  ack: number,
  seq: number,
  port: number,
): number {
  header(b, start, del ? RTM_DELNEIGH : RTM_NEWNEIGH, del, ack, seq, port);
  ndmsg(b, start + 16, AF_BRIDGE, e.ifindex, del ? 0 : NUD_PERMANENT, NTF_SELF);
  const off = putMacAttr(b, start + 28, e.mac);
  return finish(b, start, putIpAttr(b, off, NDA_DST, e.dst));
}

/**
 * Encodes one mutation at `off` of `b` (at least MAX_MESSAGE_BYTES free) with its sequence number and
 * port; `ack` asks the kernel for an ACK (the kernel answers a failure either way). Returns the offset
 * after the message. Throws TypeError for a malformed address, leaving `b` past `off` unspecified.
 */
export function encodeInto(
  b: Buffer,
  off: number,
  m: Mutation,
  seq: number,
  port: number,
  ack: boolean,
): number {
  const end = encodeCommon(b, off, m);
  if (end < 0) return encodeGeneral(b, off, m, seq, port, ack);
  if (ack) b[off + 6]! |= NLM_F_ACK;
  if (seq !== 0) u32(b, off + 8, seq >>> 0);
  if (port !== 0) u32(b, off + 12, port >>> 0);
  return end;
}

/** `encodeInto` without the template path (every message through the general encoders); for tests
 *  that hold the two paths to the same bytes. */
export function encodeGeneral(
  b: Buffer,
  off: number,
  m: Mutation,
  seq: number,
  port: number,
  ack: boolean,
): number {
  const a = ack ? NLM_F_ACK : 0;
  switch (m.op) {
    case 'routeReplace':
    case 'routeDelete':
      return route(b, off, m.route, m.op === 'routeDelete', a, seq, port);
    case 'neighReplace':
      return neigh(b, off, m.neigh, false, a, seq, port);
    case 'neighDelete':
      return neigh(b, off, m.neigh, true, a, seq, port);
    case 'fdbReplace':
    case 'fdbDelete':
      return fdb(b, off, m.fdb, m.op === 'fdbDelete', a, seq, port);
  }
}

/**
 * Templates of the three messages a full reconcile sends by the thousand (IPv4, canonical text, main
 * table): each is the general encoder's own output for a sample, with seq, port and ACK 0, so the
 * template path writes only what varies per peer (ifindex, addresses, MAC, prefix length, onlink) and
 * its fixed bytes can never differ from the general path's. Offsets: nlmsghdr 0-15, ndmsg / rtmsg 16-27,
 * attributes from 28 (in the order the general encoders write them).
 */
const template = (m: Mutation): Buffer => {
  const t = Buffer.alloc(MAX_MESSAGE_BYTES);
  return Buffer.from(t.subarray(0, encodeGeneral(t, 0, m, 0, 0, false)));
};
const ZERO_MAC = '00:00:00:00:00:00';
/** ifindex 20, NDA_DST 32, NDA_LLADDR 40. */
const NEIGH4 = template({
  op: 'neighReplace',
  neigh: { ifindex: 0, dst: '0.0.0.0', mac: ZERO_MAC },
});
/** ifindex 20, NDA_LLADDR 32, NDA_DST 44. */
const FDB4 = template({ op: 'fdbReplace', fdb: { ifindex: 0, mac: ZERO_MAC, dst: '0.0.0.0' } });
/** prefix length 17, rtm_flags 24, RTA_DST 32, RTA_GATEWAY 40, RTA_OIF 48. */
const ROUTE4 = template({
  op: 'routeReplace',
  route: { dst: '0.0.0.0/0', gateway: '0.0.0.0', oif: 1 },
});

/**
 * A canonical dotted quad's value, or -1. Through tryParseIp4's memo of the last two texts: the planner
 * has just parsed a peer's subnet address and public IP, which are the neighbour's address and the route's
 * gateway, and the FDB entry's destination, so each is a string compare here, not a scan (and the same
 * goes for the VTEP MAC through canonicalMacInto's memo). The first full reconcile runs mostly
 * unoptimized, where a text scan costs about a microsecond. The comparisons are exact.
 */
function ip4Value(text: string): number {
  const v = tryParseIp4(text);
  return v === null ? -1 : v;
}

/** A neighbour or FDB entry from its template `t`: ifindex at 20, the MAC at `macAt`, the IPv4
 *  address at `dstAt`; -1 when the address or MAC is not canonical. */
function fillNeigh(
  b: Buffer,
  off: number,
  t: Buffer,
  e: { ifindex: number; dst: string; mac?: string },
  macAt: number,
  dstAt: number,
): number {
  const dst = ip4Value(e.dst);
  if (dst < 0 || typeof e.mac !== 'string') return -1;
  b.set(t, off);
  if (!canonicalMacInto(e.mac, b, off + macAt)) return -1;
  u32(b, off + 20, e.ifindex);
  put4(b, off + dstAt, dst);
  return off + t.length;
}

/** The template path of `encodeInto` (seq, port and ACK left 0); -1 when `m` is not one of the
 *  templates' messages with canonical IPv4 text (the general path encodes it, or throws). */
function encodeCommon(b: Buffer, off: number, m: Mutation): number {
  switch (m.op) {
    case 'neighReplace':
      return fillNeigh(b, off, NEIGH4, m.neigh, 40, 32);
    case 'fdbReplace':
      return fillNeigh(b, off, FDB4, m.fdb, 32, 44);
    case 'routeReplace': {
      const r = m.route;
      if ((r.table !== undefined && r.table !== RT_TABLE_MAIN) || !r.gateway || !r.oif) return -1;
      const d = r.dst;
      const slash = d.indexOf('/');
      const digits = d.length - slash - 1;
      if (slash < 0 || digits < 1 || digits > 2) return -1;
      let len = 0;
      for (let i = slash + 1; i < d.length; i++) {
        const c = d.charCodeAt(i) - 48;
        if (c < 0 || c > 9) return -1;
        len = len * 10 + c;
      }
      const gw = ip4Value(r.gateway);
      // The destination's address is most often the gateway's text (vxlan: S via S.0).
      const dst =
        len > 32
          ? -1
          : slash === r.gateway.length && d.startsWith(r.gateway)
            ? gw
            : ip4At(d, 0, slash);
      if (dst < 0 || gw < 0) return -1;
      b.set(ROUTE4, off);
      b[off + 17] = len;
      if (r.onlink) b[off + 24] = RTNH_F_ONLINK;
      put4(b, off + 32, dst);
      put4(b, off + 40, gw);
      u32(b, off + 48, r.oif >>> 0);
      return off + ROUTE4.length;
    }
    default:
      return -1;
  }
}

/** Sets or clears NLM_F_ACK on the message at `start`. */
export function setAck(b: Buffer, start: number, ack: boolean): void {
  const flags = b.readUInt16LE(start + 6);
  u16(b, start + 6, ack ? flags | NLM_F_ACK : flags & ~NLM_F_ACK);
}

const routeText = (r: RouteSpec): string =>
  `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.oif ? ` dev ${r.oif}` : ''}${r.onlink ? ' onlink' : ''}`;

/** The object a mutation names, for error messages (computed only when one fails). */
export function mutationObject(m: Mutation): string {
  switch (m.op) {
    case 'routeReplace':
    case 'routeDelete':
      return routeText(m.route);
    case 'neighReplace':
      return `${m.neigh.dst} lladdr ${m.neigh.mac} dev ${m.neigh.ifindex}`;
    case 'neighDelete':
      return `${m.neigh.dst} dev ${m.neigh.ifindex}`;
    case 'fdbReplace':
    case 'fdbDelete':
      return `${m.fdb.mac} dst ${m.fdb.dst} dev ${m.fdb.ifindex}`;
  }
}
