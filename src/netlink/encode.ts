/**
 * Hand-written encoders for the three messages weft sends by the thousand (route, neighbour, FDB
 * entry): fixed layouts from <linux/rtnetlink.h> and <linux/neighbour.h>, no per-message attribute
 * machinery. They halve the CPU per request compared with the `netlink` package's generic formatter
 * (bench/netlink.ts). Everything else still goes through the package.
 */
import { ipFamily, ipToBytes, macToBytes, parseCidr } from './addr.js';
import type { FdbSpec, Mutation, NeighSpec, RouteSpec } from './ops.js';

export const NLMSG_ERROR = 2;
const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const RTM_NEWNEIGH = 28;
const RTM_DELNEIGH = 29;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
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

type Attr = [type: number, payload: Buffer];

const align4 = (n: number): number => (n + 3) & ~3;

/** nlmsghdr + fixed header + attributes; seq and port are written later by `stamp`. */
function message(type: number, flags: number, fixed: Buffer, attrs: Attr[]): Buffer {
  let len = 16 + fixed.length;
  for (const [, p] of attrs) len += align4(4 + p.length);
  const b = Buffer.alloc(len);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(flags | NLM_F_REQUEST | NLM_F_ACK, 6);
  fixed.copy(b, 16);
  let off = 16 + fixed.length;
  for (const [t, p] of attrs) {
    b.writeUInt16LE(4 + p.length, off);
    b.writeUInt16LE(t, off + 2);
    p.copy(b, off + 4);
    off += align4(4 + p.length);
  }
  return b;
}

/** Writes the sequence number and port id into an encoded message. */
export function stamp(msg: Buffer, seq: number, port: number): void {
  msg.writeUInt32LE(seq >>> 0, 8);
  msg.writeUInt32LE(port >>> 0, 12);
}

const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};

export function encodeRoute(r: RouteSpec, del: boolean): Buffer {
  const c = parseCidr(r.dst);
  const table = r.table ?? RT_TABLE_MAIN;
  const fixed = Buffer.alloc(12);
  fixed[0] = c.family === 4 ? AF_INET : AF_INET6;
  fixed[1] = c.len;
  fixed[4] = table > 255 ? RT_TABLE_UNSPEC : table;
  if (del) {
    fixed[6] = RT_SCOPE_NOWHERE;
  } else {
    fixed[5] = RTPROT_STATIC;
    fixed[6] = r.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    fixed[7] = RTN_UNICAST;
    fixed.writeUInt32LE(r.onlink ? RTNH_F_ONLINK : 0, 8);
  }
  const attrs: Attr[] = [[RTA_DST, ipToBytes(c.ip)]];
  if (table > 255) attrs.push([RTA_TABLE, u32(table)]);
  if (r.gateway) attrs.push([RTA_GATEWAY, ipToBytes(r.gateway)]);
  if (r.oif) attrs.push([RTA_OIF, u32(r.oif)]);
  return del
    ? message(RTM_DELROUTE, 0, fixed, attrs)
    : message(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, fixed, attrs);
}

function ndmsg(family: number, ifindex: number, state: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b[0] = family;
  b.writeInt32LE(ifindex, 4);
  b.writeUInt16LE(state, 8);
  b[10] = flags;
  return b;
}

export function encodeNeigh(
  n: Pick<NeighSpec, 'ifindex' | 'dst'> & { mac?: string },
  del: boolean,
): Buffer {
  const family = ipFamily(n.dst) === 4 ? AF_INET : AF_INET6;
  const attrs: Attr[] = [[NDA_DST, ipToBytes(n.dst)]];
  if (del) return message(RTM_DELNEIGH, 0, ndmsg(family, n.ifindex, 0, 0), attrs);
  attrs.push([NDA_LLADDR, macToBytes(n.mac!)]);
  return message(
    RTM_NEWNEIGH,
    NLM_F_CREATE | NLM_F_REPLACE,
    ndmsg(family, n.ifindex, NUD_PERMANENT, 0),
    attrs,
  );
}

export function encodeFdb(f: FdbSpec, del: boolean): Buffer {
  const attrs: Attr[] = [
    [NDA_LLADDR, macToBytes(f.mac)],
    [NDA_DST, ipToBytes(f.dst)],
  ];
  return del
    ? message(RTM_DELNEIGH, 0, ndmsg(AF_BRIDGE, f.ifindex, 0, NTF_SELF), attrs)
    : message(
        RTM_NEWNEIGH,
        NLM_F_CREATE | NLM_F_REPLACE,
        ndmsg(AF_BRIDGE, f.ifindex, NUD_PERMANENT, NTF_SELF),
        attrs,
      );
}

const routeText = (r: RouteSpec): string =>
  `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.oif ? ` dev ${r.oif}` : ''}${r.onlink ? ' onlink' : ''}`;

const fdbText = (f: FdbSpec): string => `${f.mac} dst ${f.dst} dev ${f.ifindex}`;

/** Encodes one mutation for the bulk path, with its op name and object text for errors. */
export function encodeMutation(m: Mutation): { msg: Buffer; op: string; object: string } {
  switch (m.op) {
    case 'routeReplace':
    case 'routeDelete':
      return {
        msg: encodeRoute(m.route, m.op === 'routeDelete'),
        op: m.op,
        object: routeText(m.route),
      };
    case 'neighReplace':
      return {
        msg: encodeNeigh(m.neigh, false),
        op: m.op,
        object: `${m.neigh.dst} lladdr ${m.neigh.mac} dev ${m.neigh.ifindex}`,
      };
    case 'neighDelete':
      return {
        msg: encodeNeigh(m.neigh, true),
        op: m.op,
        object: `${m.neigh.dst} dev ${m.neigh.ifindex}`,
      };
    case 'fdbReplace':
    case 'fdbDelete':
      return { msg: encodeFdb(m.fdb, m.op === 'fdbDelete'), op: m.op, object: fdbText(m.fdb) };
  }
}
