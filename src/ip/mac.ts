/**
 * MAC addresses (48-bit) as canonical text: lowercase hex pairs with colons ('c6:d2:32:6f:8f:44'), the
 * form flannel writes for `VtepMAC`. Parsing accepts ':' or '-' separators in either case.
 */
import { AddressError } from './ip4.js';

/**
 * The value of each lower-case hex digit by character code (index < 128), -1 for every other character:
 * the canonical form's digits, looked up instead of a call per digit (the fast paths that take only
 * canonical MACs, for every lease of every plan).
 */
export const LOWER_HEX_DIGIT: Readonly<Int8Array> = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let c = 0; c < 10; c++) t[48 + c] = c;
  for (let c = 0; c < 6; c++) t[97 + c] = 10 + c;
  return t;
})();

/** The last canonical MAC text scanned and its bytes: the planner's VtepMAC check scans a peer's MAC,
 *  then the encoder writes the same text into the neighbour and the FDB entry, copied from here instead
 *  of scanned twice more (the first full reconcile runs mostly unoptimized, where a scan costs about a
 *  microsecond). Exact text → its bytes, so the result is the scan's. */
let memoMac = '';
const memoMacBytes = new Uint8Array(6);

/**
 * Writes a MAC given in canonical form (lower-case colon form, what flannel and weft write) as 6 bytes
 * at `out[off]`; false for any other text (bytes past `off` then unspecified; the general parser
 * decides). No allocation: the encoder and the VtepMAC check run it for every lease of every plan.
 */
export function canonicalMacInto(text: string, out: Uint8Array, off: number): boolean {
  if (text === memoMac && off + 6 <= out.length) {
    out.set(memoMacBytes, off);
    return true;
  }
  if (off + 6 > out.length) return scanCanonicalMac(text, out, off);
  // Scanned into the memo, then copied out in one call.
  memoMac = '';
  if (!scanCanonicalMac(text, memoMacBytes, 0)) return false;
  memoMac = text;
  out.set(memoMacBytes, off);
  return true;
}

function scanCanonicalMac(text: string, out: Uint8Array, off: number): boolean {
  if (text.length !== 17) return false;
  for (let i = 0; i < 6; i++) {
    const c1 = text.charCodeAt(i * 3);
    const c2 = text.charCodeAt(i * 3 + 1);
    const hi = c1 < 128 ? LOWER_HEX_DIGIT[c1]! : -1;
    const lo = c2 < 128 ? LOWER_HEX_DIGIT[c2]! : -1;
    if (hi < 0 || lo < 0 || (i < 5 && text.charCodeAt(i * 3 + 2) !== 58)) return false;
    out[off + i] = (hi << 4) | lo;
  }
  return true;
}

/** A hex digit's value, or -1. */
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  const l = c | 32; // A-F → a-f
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/** The six bytes of a MAC (hex pairs joined by one kind of separator, ':' or '-'), or null when
 *  `text` is not one. A character scan: VtepMACs are parsed for every lease of every plan. */
export function tryParseMac(text: string): Uint8Array | null {
  if (text.length !== 17) return null;
  const sep = text.charCodeAt(2);
  if (sep !== 58 /* : */ && sep !== 45 /* - */) return null;
  const out = new Uint8Array(6);
  for (let b = 0; b < 6; b++) {
    const at = b * 3;
    if (b > 0 && text.charCodeAt(at - 1) !== sep) return null;
    const hi = hexValue(text.charCodeAt(at));
    const lo = hexValue(text.charCodeAt(at + 1));
    if (hi < 0 || lo < 0) return null;
    out[b] = hi * 16 + lo;
  }
  return out;
}

export function parseMac(text: string): Uint8Array {
  const b = tryParseMac(text);
  if (!b) throw new AddressError(`invalid MAC address ${JSON.stringify(text)}`);
  return b;
}

const HEX2 = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

export function formatMac(bytes: Uint8Array | readonly number[]): string {
  if (bytes.length !== 6) throw new AddressError(`a MAC address has 6 bytes, got ${bytes.length}`);
  const h = (i: number): string => HEX2[bytes[i]! & 255]!;
  return `${h(0)}:${h(1)}:${h(2)}:${h(3)}:${h(4)}:${h(5)}`;
}
