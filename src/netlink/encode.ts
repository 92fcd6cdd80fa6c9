/**
 * Hand-written encoders for the three messages weft sends by the thousand (route, neighbour, FDB
 * entry): fixed layouts from <linux/rtnetlink.h> and <linux/neighbour.h>, written straight into the
 * datagram buffer (no per-message Buffer, no attribute objects). Addresses in canonical form (what weft
 * produces) take a fast path; anything else goes through addr.ts, which validates and throws TypeError.
 * Everything other than these three kinds of message still goes through the `netlink` package.
 */
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
 * Writes a canonical dotted quad ('10.5.1.0') as 4 bytes at `off`; returns false (nothing written)
 * for anything else, so the caller can take the validating path.
 */
function writeIp4Fast(b: Buffer, off: number, ip: string): boolean {
  let octet = 0;
  let digits = 0;
  let part = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || part === 3) return false;
      b[off + part++] = octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return false; // leading zero: not canonical
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return false;
    } else return false;
  }
  if (digits === 0 || part !== 3) return false;
  b[off + 3] = octet;
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

const hex = (c: number): number =>
  c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;

/** NDA_LLADDR with a MAC; canonical lower-case colon form fast, anything else validated. */
function putMacAttr(b: Buffer, off: number, mac: string): number {
  u16(b, off, 10);
  u16(b, off + 2, NDA_LLADDR);
  let fast = mac.length === 17;
  for (let i = 0; fast && i < 6; i++) {
    const hi = hex(mac.charCodeAt(i * 3));
    const lo = hex(mac.charCodeAt(i * 3 + 1));
    if (hi < 0 || lo < 0 || (i < 5 && mac.charCodeAt(i * 3 + 2) !== 58)) fast = false;
    else b[off + 4 + i] = (hi << 4) | lo;
  }
  if (!fast) macToBytes(mac).copy(b, off + 4);
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

/** nlmsghdr at `start` (length written by `finish`). */
function header(
  b: Buffer,
  start: number,
  type: number,
  flags: number,
  seq: number,
  port: number,
): void {
  u16(b, start + 4, type);
  u16(b, start + 6, flags | NLM_F_REQUEST);
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
  header(
    b,
    start,
    del ? RTM_DELROUTE : RTM_NEWROUTE,
    (del ? 0 : NLM_F_CREATE | NLM_F_REPLACE) | ack,
    seq,
    port,
  );
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
  header(
    b,
    start,
    del ? RTM_DELNEIGH : RTM_NEWNEIGH,
    (del ? 0 : NLM_F_CREATE | NLM_F_REPLACE) | ack,
    seq,
    port,
  );
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
  header(
    b,
    start,
    del ? RTM_DELNEIGH : RTM_NEWNEIGH,
    (del ? 0 : NLM_F_CREATE | NLM_F_REPLACE) | ack,
    seq,
    port,
  );
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
