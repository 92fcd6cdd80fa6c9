/**
 * MAC addresses (48-bit) as canonical text: lowercase hex pairs with colons ('c6:d2:32:6f:8f:44'), the
 * form flannel writes for `VtepMAC`. Parsing accepts ':' or '-' separators in either case.
 */
import { AddressError } from './ip4.js';

const MAC = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/;

/** The six bytes of a MAC, or null when `text` is not one. */
export function tryParseMac(text: string): Uint8Array | null {
  if (!MAC.test(text)) return null;
  return Uint8Array.from(text.split(/[:-]/).map((h) => parseInt(h, 16)));
}

export function parseMac(text: string): Uint8Array {
  const b = tryParseMac(text);
  if (!b) throw new AddressError(`invalid MAC address ${JSON.stringify(text)}`);
  return b;
}

export function formatMac(bytes: Uint8Array | readonly number[]): string {
  if (bytes.length !== 6) throw new AddressError(`a MAC address has 6 bytes, got ${bytes.length}`);
  return Array.from(bytes, (b) => (b & 255).toString(16).padStart(2, '0')).join(':');
}

/** Canonical lowercase colon form of a MAC text; throws AddressError when it is not one. */
export function canonicalMac(text: string): string {
  return formatMac(parseMac(text));
}
