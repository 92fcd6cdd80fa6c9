/**
 * ADD results (docs/cni-contract.md A6) and their conversion between spec versions. weft normalises whatever
 * its delegate returned (0.3.0 … 1.1.0) into one internal shape, validating every field, and renders it in
 * exactly the version the runtime asked for:
 *   < 1.0.0: `ips[].version` ("4"/"6"); interfaces only name/mac/sandbox; routes only dst/gw.
 *   1.0.0:   no `ips[].version`; interfaces name/mac/sandbox; routes dst/gw.
 *   1.1.0:   plus interface mtu/socketPath/pciID and route mtu/advmss/priority/table/scope.
 */
import { parseHostCidr, parseIP } from '../ip/host-cidr.js';
import { CniCode, CniError } from './errors.js';
import { isObject, type JsonObject } from './netconf.js';
import { compareVersions, type CniVersion } from './versions.js';

export interface ResultInterface {
  name: string;
  mac?: string;
  sandbox?: string;
  mtu?: number;
  socketPath?: string;
  pciID?: string;
}
export interface ResultIP {
  address: string;
  gateway?: string;
  interface?: number;
}
export interface ResultRoute {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}
export interface ResultDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}
/** Version-independent ADD result. */
export interface Result {
  interfaces: ResultInterface[];
  ips: ResultIP[];
  routes: ResultRoute[];
  dns: ResultDns | undefined;
}

const bad = (msg: string): CniError =>
  new CniError(CniCode.DelegateBadOutput, `delegate result: ${msg}`);

const MAC = /^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$|^([0-9a-fA-F]{2}:){19}[0-9a-fA-F]{2}$/;

function str(o: JsonObject, k: string, where: string, required = false): string | undefined {
  const v = o[k];
  if (v === undefined || v === null || (v === '' && !required)) {
    if (required) throw bad(`${where}.${k} is missing`);
    return undefined;
  }
  if (typeof v !== 'string') throw bad(`${where}.${k} is not a string`);
  return v;
}

function int(o: JsonObject, k: string, where: string): number | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    throw bad(`${where}.${k} is not a non-negative integer`);
  return v;
}

function strList(o: JsonObject, k: string, where: string): string[] | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw bad(`${where}.${k} is not a list of strings`);
  return v as string[];
}

function list(o: JsonObject, k: string): JsonObject[] {
  const v = o[k];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every(isObject)) throw bad(`"${k}" is not a list of objects`);
  return v as JsonObject[];
}

/** Drops undefined-valued keys (exactOptionalPropertyTypes: absent, not undefined). */
function withDefined<T>(o: { [K in keyof T]-?: T[K] | undefined }): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

/** Validates a result of any supported version (0.3.0+) into the internal shape. */
export function parseResult(raw: unknown): Result {
  if (!isObject(raw)) throw bad('not a JSON object');
  if (raw['ip4'] !== undefined || raw['ip6'] !== undefined)
    throw bad('0.2.0-style result (ip4/ip6) is not supported');
  const interfaces = list(raw, 'interfaces').map((o, i) => {
    const w = `interfaces[${i}]`;
    const mac = str(o, 'mac', w);
    if (mac !== undefined && !MAC.test(mac)) throw bad(`${w}.mac "${mac}" is not a MAC address`);
    return withDefined<ResultInterface>({
      name: str(o, 'name', w, true)!,
      mac,
      sandbox: str(o, 'sandbox', w),
      mtu: int(o, 'mtu', w),
      socketPath: str(o, 'socketPath', w),
      pciID: str(o, 'pciID', w),
    });
  });
  const ips = list(raw, 'ips').map((o, i) => {
    const w = `ips[${i}]`;
    const address = str(o, 'address', w, true)!;
    if (!parseHostCidr(address)) throw bad(`${w}.address "${address}" is not a CIDR`);
    const gateway = str(o, 'gateway', w);
    if (gateway !== undefined && !parseIP(gateway))
      throw bad(`${w}.gateway "${gateway}" is not an IP`);
    const iface = int(o, 'interface', w);
    if (iface !== undefined && iface >= interfaces.length)
      throw bad(`${w}.interface ${iface} is out of range`);
    return withDefined<ResultIP>({ address, gateway, interface: iface });
  });
  const routes = list(raw, 'routes').map((o, i) => {
    const w = `routes[${i}]`;
    const dst = str(o, 'dst', w, true)!;
    if (!parseHostCidr(dst)) throw bad(`${w}.dst "${dst}" is not a CIDR`);
    const gw = str(o, 'gw', w);
    if (gw !== undefined && !parseIP(gw)) throw bad(`${w}.gw "${gw}" is not an IP`);
    return withDefined<ResultRoute>({
      dst,
      gw,
      mtu: int(o, 'mtu', w),
      advmss: int(o, 'advmss', w),
      priority: int(o, 'priority', w),
      table: int(o, 'table', w),
      scope: int(o, 'scope', w),
    });
  });
  let dns: ResultDns | undefined;
  if (isObject(raw['dns'])) {
    const d = raw['dns'];
    dns = withDefined<ResultDns>({
      nameservers: strList(d, 'nameservers', 'dns'),
      domain: str(d, 'domain', 'dns'),
      search: strList(d, 'search', 'dns'),
      options: strList(d, 'options', 'dns'),
    });
  }
  return { interfaces, ips, routes, dns };
}

/** The optional fields each version writes (1.1.0 adds interface mtu, socketPath, pciID and route mtu …). */
const INTERFACE_KEYS = ['mac', 'sandbox'] as const;
const INTERFACE_KEYS_V11 = [...INTERFACE_KEYS, 'mtu', 'socketPath', 'pciID'] as const;
const ROUTE_KEYS = ['gw'] as const;
const ROUTE_KEYS_V11 = [...ROUTE_KEYS, 'mtu', 'advmss', 'priority', 'table', 'scope'] as const;

/** Renders `r` in exactly `version`. */
export function renderResult(r: Result, version: CniVersion): JsonObject {
  const pre1 = compareVersions(version, '1.0.0') < 0;
  const v11 = compareVersions(version, '1.1.0') >= 0;
  const out: JsonObject = { cniVersion: version };
  out['interfaces'] = r.interfaces.map((i) => {
    const o: JsonObject = { name: i.name };
    for (const k of v11 ? INTERFACE_KEYS_V11 : INTERFACE_KEYS) if (i[k] !== undefined) o[k] = i[k];
    return o;
  });
  out['ips'] = r.ips.map((ip) => {
    const o: JsonObject = {};
    if (pre1) o['version'] = parseHostCidr(ip.address)!.family === 6 ? '6' : '4';
    if (ip.interface !== undefined) o['interface'] = ip.interface;
    o['address'] = ip.address;
    if (ip.gateway !== undefined) o['gateway'] = ip.gateway;
    return o;
  });
  out['routes'] = r.routes.map((rt) => {
    const o: JsonObject = { dst: rt.dst };
    for (const k of v11 ? ROUTE_KEYS_V11 : ROUTE_KEYS) if (rt[k] !== undefined) o[k] = rt[k];
    return o;
  });
  const dns: JsonObject = {};
  for (const k of ['nameservers', 'domain', 'search', 'options'] as const)
    if (r.dns?.[k] !== undefined) dns[k] = r.dns[k];
  out['dns'] = dns;
  return out;
}

/** The interface created inside the container (`sandbox` set and named `ifname`), if any. */
export function sandboxInterface(
  r: Result,
  ifname: string,
): { index: number; iface: ResultInterface } | undefined {
  const index = r.interfaces.findIndex((i) => i.sandbox !== undefined && i.name === ifname);
  return index < 0 ? undefined : { index, iface: r.interfaces[index]! };
}
