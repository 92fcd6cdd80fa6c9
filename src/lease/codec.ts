/**
 * Lease value JSON codec (docs/flannel-compat.md §2). The writer produces exactly what flannel's Go
 * `json.Marshal(LeaseAttrs)` produces: fields in the order PublicIP, PublicIPv6 (null when absent),
 * BackendType (omitted when empty), BackendData, BackendV6Data (omitted when absent), compact, with Go's
 * HTML-safe escaping of `<`, `>`, `&`, U+2028 and U+2029. The reader is as tolerant as flannel's: field
 * names match case-insensitively, unknown fields are ignored, a missing PublicIP reads as '0.0.0.0'.
 * Anything else that is not a valid lease value is rejected with E_LEASE_INVALID.
 *
 * Lease values come from any etcd writer, so the reader is bounded before it parses: a value longer than
 * MAX_LEASE_VALUE_BYTES or nested deeper than MAX_LEASE_VALUE_DEPTH is rejected without building it
 * (flannel's own values are about 150 bytes, 3 levels). Everything downstream (the watch diff, logs,
 * weftctl's JSON output) can then walk a decoded lease without running out of stack.
 */
import { showValue, WeftError } from '../errors.js';
import { formatIp4, tryParseIp4 } from '../ip/ip4.js';
import { formatIp6, tryParseIp6 } from '../ip/ip6.js';
import type { LeaseAttrs } from './lease.js';

/** Go's encoding/json escapes these even inside strings; matching it keeps values byte-identical. */
function goEscape(json: string): string {
  return json.replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** `text` as a canonical IPv4 (`v6`: IPv6) address; else E_LEASE_INVALID naming `field`. */
function canonicalIp(
  field: string,
  text: unknown,
  v6: boolean,
  show: (v: unknown) => string,
): string {
  const ip = typeof text !== 'string' ? null : v6 ? tryParseIp6(text) : tryParseIp4(text);
  if (ip === null) throw invalid(`${field} ${show(text)} is not an IPv${v6 ? 6 : 4} address`);
  return typeof ip === 'bigint' ? formatIp6(ip) : formatIp4(ip);
}

/** The lease value flannel would write for `attrs`. */
export function encodeLeaseAttrs(attrs: LeaseAttrs): string {
  const { publicIp, publicIpv6 } = attrs;
  const out: Record<string, unknown> = {
    PublicIP: canonicalIp('PublicIP', publicIp, false, JSON.stringify),
    PublicIPv6:
      publicIpv6 === null ? null : canonicalIp('PublicIPv6', publicIpv6, true, JSON.stringify),
  };
  if (attrs.backendType !== '') out['BackendType'] = attrs.backendType;
  if (attrs.backendData !== undefined) out['BackendData'] = attrs.backendData;
  if (attrs.backendV6Data !== undefined) out['BackendV6Data'] = attrs.backendV6Data;
  return goEscape(JSON.stringify(out));
}

function invalid(message: string): WeftError {
  return new WeftError('E_LEASE_INVALID', `lease value: ${message}`);
}

/** Longest lease value weft decodes (bytes of UTF-8); flannel writes ~150. */
export const MAX_LEASE_VALUE_BYTES = 64 * 1024;
/** Deepest nesting of arrays/objects a lease value may have (flannel's is 3: value, BackendData). */
export const MAX_LEASE_VALUE_DEPTH = 32;

/** E_LEASE_INVALID for a value of `bytes` UTF-8 bytes, longer than MAX_LEASE_VALUE_BYTES. */
export function valueTooLong(bytes: number): WeftError {
  return invalid(
    `value is ${bytes} bytes, more than the ${MAX_LEASE_VALUE_BYTES} a lease value may have`,
  );
}

/**
 * Whether JSON text nests deeper than `limit`, scanning at most until it does (brackets inside strings
 * do not count). Linear, no recursion. Returns null when it does not, else the top-level member the
 * too-deep value sits in (its name as written, cut to 80 characters; null for a top-level array).
 */
export function jsonTooDeep(text: string, limit: number): { field: string | null } | null {
  let depth = 0;
  let inString = false;
  let start = 0;
  let field: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) {
        inString = false;
        if (depth === 1) field = text.slice(start, Math.min(i, start + 80));
      }
    } else if (c === 0x22) {
      inString = true;
      start = i + 1;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return { field };
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return null;
}

/** Parses a lease value as written by flannel or weft; throws E_LEASE_INVALID naming the problem. */
export function decodeLeaseAttrs(json: string): LeaseAttrs {
  // Cheap upper bound first (a UTF-16 unit is at most 3 UTF-8 bytes), exact count only near the cap.
  if (json.length * 3 > MAX_LEASE_VALUE_BYTES) {
    const bytes = new TextEncoder().encode(json).length;
    if (bytes > MAX_LEASE_VALUE_BYTES) throw valueTooLong(bytes);
  }
  const deep = jsonTooDeep(json, MAX_LEASE_VALUE_DEPTH);
  if (deep)
    throw invalid(
      `${deep.field === null ? 'value' : showValue(deep.field)} is nested deeper than ${MAX_LEASE_VALUE_DEPTH} levels`,
    );
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw invalid(`not JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid('not a JSON object');
  const fields = new Map<string, unknown>();
  for (const [k, v] of Object.entries(value)) fields.set(k.toLowerCase(), v);

  const ip4 = fields.get('publicip') ?? null;
  const ip6 = fields.get('publicipv6') ?? null;
  const publicIp = ip4 === null ? '0.0.0.0' : canonicalIp('PublicIP', ip4, false, showValue);
  const publicIpv6 = ip6 === null ? null : canonicalIp('PublicIPv6', ip6, true, showValue);
  const type = fields.get('backendtype');
  if (type !== undefined && type !== null && typeof type !== 'string')
    throw invalid(`BackendType ${showValue(type)} is not a string`);
  const attrs: { -readonly [K in keyof LeaseAttrs]: LeaseAttrs[K] } = {
    publicIp,
    publicIpv6,
    backendType: type ?? '',
  };
  if (fields.has('backenddata')) attrs.backendData = fields.get('backenddata');
  if (fields.has('backendv6data')) attrs.backendV6Data = fields.get('backendv6data');
  return attrs;
}
