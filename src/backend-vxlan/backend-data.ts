/**
 * Validation of a peer's vxlan `BackendData` / `BackendV6Data` (`{"VNI":1,"VtepMAC":"c6:d2:…"}`): it
 * comes from etcd, i.e. from any host of the cluster, so it is hostile until checked. A bad value skips
 * that peer (with a warning naming the lease), never the loop.
 */
import { jsonField, spelledTwice } from '../backend/backend-config.js';
import { showValue } from '../errors.js';
import { canonicalMacInto, formatMac, tryParseMac } from '../ip/index.js';

export interface VxlanBackendData {
  /**
   * null when the lease names no VNI: flannel before v0.11 writes `{"VtepMAC":"…"}` alone, and no
   * flannel reader looks at a peer's VNI, so such a peer is programmed like any other.
   */
  readonly vni: number | null;
  readonly vtepMac: string;
}

export type Parsed<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

const scratch = new Uint8Array(6);
/**
 * For a MAC already in canonical form (what flannel and weft write): 1 unicast, 0 not unicast (group
 * bit or all zero); -1 when `mac` is not canonical (then the general parser decides). No allocation:
 * this runs for every lease of every plan.
 */
function canonicalUnicast(mac: string): number {
  if (!canonicalMacInto(mac, scratch, 0)) return -1;
  const any = scratch[0]! | scratch[1]! | scratch[2]! | scratch[3]! | scratch[4]! | scratch[5]!;
  return (scratch[0]! & 1) === 0 && any !== 0 ? 1 : 0;
}

export function parseVxlanBackendData(data: unknown): Parsed<VxlanBackendData> {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { ok: false, reason: 'BackendData is not an object' };
  }
  const d = data as Record<string, unknown>;
  // A field in two spellings: flannel's Go reader takes the one written last, which the parsed object
  // no longer tells. Only possible with more keys than the two read (weft and flannel write exactly
  // VNI and VtepMAC), so the common lease costs no scan.
  if (!(Object.hasOwn(d, 'VNI') && Object.hasOwn(d, 'VtepMAC') && Object.keys(d).length === 2)) {
    for (const name of ['VNI', 'VtepMAC']) {
      const twice = spelledTwice(d, name);
      if (twice !== null)
        return {
          ok: false,
          reason: `BackendData names ${name} twice (${twice.map((f) => showValue(f)).join(', ')}): write it once`,
        };
    }
  }
  // The exact field names first (constant-key loads); any other case through jsonField.
  const vni = (Object.hasOwn(d, 'VNI') ? d['VNI'] : undefined) ?? jsonField(d, 'VNI') ?? null;
  if (
    vni !== null &&
    (typeof vni !== 'number' || !Number.isInteger(vni) || vni < 0 || vni > 16_777_215)
  ) {
    return {
      ok: false,
      reason: `BackendData.VNI ${showValue(vni)} is not an integer from 0 to 16777215`,
    };
  }
  const mac = (Object.hasOwn(d, 'VtepMAC') ? d['VtepMAC'] : undefined) ?? jsonField(d, 'VtepMAC');
  if (typeof mac !== 'string') return { ok: false, reason: 'BackendData.VtepMAC is missing' };
  const fast = canonicalUnicast(mac);
  if (fast === 1) return { ok: true, value: { vni, vtepMac: mac } };
  // Parsed once (this runs for every lease of every plan): the bytes decide unicast, then the text.
  const bytes = tryParseMac(mac);
  if (bytes === null)
    return { ok: false, reason: `BackendData.VtepMAC ${showValue(mac)} is not a MAC address` };
  const canonical = formatMac(bytes);
  if ((bytes[0]! & 1) !== 0 || bytes.every((x) => x === 0)) {
    return { ok: false, reason: `BackendData.VtepMAC ${canonical} is not a unicast MAC address` };
  }
  return { ok: true, value: { vni, vtepMac: canonical } };
}
