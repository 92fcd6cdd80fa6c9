/**
 * Decoding and encoding of link messages: the `netlink` package types IFLA_LINKINFO as a raw buffer, so
 * the nested IFLA_INFO_KIND / IFLA_INFO_DATA attributes are handled here.
 */
import { AttrStream, ifla, type RtNetlinkSocket } from './package.js';
import { addrFamily, bytesToIp, bytesToMac, ipToBytes } from './addr.js';
import type { LinkInfo, VxlanAttrs, VxlanLinkSpec } from './ops.js';

type LinkMessage = Awaited<ReturnType<RtNetlinkSocket['getLinks']>>[number];

const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const NLA_TYPE_MASK = 0x3fff;

/** Splits a buffer of netlink attributes into type → payload. */
export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
    if (len < 4 || off + len > buf.length) break;
    out.set(type, buf.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return out;
}

function parseVxlanData(data: Buffer): VxlanAttrs {
  const v = ifla.parseVxlan(data);
  const local = v.local ?? v.local6;
  const group = v.group ?? v.group6;
  const zero = (b: Buffer | undefined): boolean => !b || b.every((x) => x === 0);
  return {
    vni: v.id ?? 0,
    local: local && !zero(local) ? bytesToIp(local) : null,
    underlayIndex: v.link ?? null,
    port: v.port ? v.port.readUInt16BE(0) : 0,
    learning: (v.learning ?? 0) !== 0,
    gbp: v.gbp === true,
    group: group && !zero(group) ? bytesToIp(group) : null,
    l2miss: (v.l2miss ?? 0) !== 0,
    l3miss: (v.l3miss ?? 0) !== 0,
  };
}

export function toLinkInfo(msg: LinkMessage): LinkInfo {
  let kind: string | null = null;
  let vxlan: VxlanAttrs | undefined;
  if (msg.attrs.linkinfo) {
    const info = parseAttrs(msg.attrs.linkinfo);
    const k = info.get(IFLA_INFO_KIND);
    if (k) kind = k.toString('latin1').replace(/\0+$/, '');
    const data = info.get(IFLA_INFO_DATA);
    if (kind === 'vxlan' && data) vxlan = parseVxlanData(data);
  }
  const mac =
    msg.attrs.address && msg.attrs.address.length === 6 ? bytesToMac(msg.attrs.address) : null;
  const base = {
    index: msg.data.index ?? 0,
    name: msg.attrs.ifname ?? '',
    kind,
    mtu: msg.attrs.mtu ?? 0,
    mac,
    up: msg.data.flags?.up === true,
  };
  return vxlan ? { ...base, vxlan } : base;
}

/** IFLA_LINKINFO for a new VXLAN device. */
export function formatVxlanLinkinfo(spec: VxlanLinkSpec): Buffer {
  const port = Buffer.alloc(2);
  port.writeUInt16BE(spec.port);
  const local = ipToBytes(spec.local);
  const data: ifla.Vxlan = {
    id: spec.vni,
    link: spec.underlayIndex,
    port,
    learning: spec.learning ? 1 : 0,
    ...(addrFamily(spec.local) === 4 ? { local } : { local6: local }),
    ...(spec.gbp ? { gbp: true as const } : {}),
  };
  const li = new AttrStream();
  li.push(IFLA_INFO_KIND, Buffer.from('vxlan\0'));
  li.push(IFLA_INFO_DATA, ifla.formatVxlan(data));
  return Buffer.concat(li.bufs as Uint8Array[]);
}

/** IFLA_LINKINFO changing only a VXLAN device's learning (the kernel keeps its other settings). */
export function formatVxlanLearning(learning: boolean): Buffer {
  const li = new AttrStream();
  li.push(IFLA_INFO_KIND, Buffer.from('vxlan\0'));
  li.push(IFLA_INFO_DATA, ifla.formatVxlan({ learning: learning ? 1 : 0 }));
  return Buffer.concat(li.bufs as Uint8Array[]);
}

/** Why an existing VXLAN link cannot be reused for `spec`, or null when it can (flannel's rule). */
export function vxlanIncompatibility(link: LinkInfo, spec: VxlanLinkSpec): string | null {
  if (link.kind !== 'vxlan' || !link.vxlan) return `kind is ${link.kind ?? 'none'}, not vxlan`;
  const v = link.vxlan;
  if (v.vni !== spec.vni) return `VNI ${v.vni} ≠ ${spec.vni}`;
  if (v.local !== bytesToIp(ipToBytes(spec.local)))
    return `local ${v.local ?? 'unset'} ≠ ${spec.local}`;
  if (v.underlayIndex !== spec.underlayIndex) {
    return `underlay index ${v.underlayIndex ?? 'unset'} ≠ ${spec.underlayIndex}`;
  }
  if (v.port !== spec.port) return `port ${v.port} ≠ ${spec.port}`;
  if (v.learning !== spec.learning) return `learning ${v.learning} ≠ ${spec.learning}`;
  if (v.gbp !== spec.gbp) return `GBP ${v.gbp} ≠ ${spec.gbp}`;
  if (v.group !== null) return `has multicast group ${v.group}`;
  if (v.l2miss || v.l3miss) return 'has l2miss/l3miss';
  return null;
}
