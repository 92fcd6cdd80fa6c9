/**
 * An address message's ifa_flags (IFA_F_* in linux/if_addr.h) by the names `ip addr` prints. The kernel
 * sends the full u32 in the IFA_FLAGS attribute (the header's u8 holds only the low bits); bit 0 is
 * IFA_F_SECONDARY for IPv4 and IFA_F_TEMPORARY (an RFC 8981 privacy address) for IPv6.
 */
import type { rt } from './package.js';

type Flags = NonNullable<rt.AddressAttrs['flags']>;

const NAMES: Record<Exclude<keyof Flags, 'secondary' | '__unknown'>, string> = {
  nodad: 'nodad',
  optimistic: 'optimistic',
  dadfailed: 'dadfailed',
  homeaddress: 'home',
  deprecated: 'deprecated',
  tentative: 'tentative',
  permanent: 'permanent',
  managetempaddr: 'mngtmpaddr',
  noprefixroute: 'noprefixroute',
  mcautojoin: 'autojoin',
  stablePrivacy: 'stable-privacy',
};

/** The flag names of an address message of `family` (IFA_FLAGS when present, else the header's). */
export function addrFlagNames(
  m: Pick<rt.AddressMessage, 'data' | 'attrs'>,
  family: 4 | 6,
): string[] {
  const f: Flags = m.attrs.flags ?? m.data.flags ?? {};
  const out: string[] = f.secondary ? [family === 6 ? 'temporary' : 'secondary'] : [];
  for (const [key, name] of Object.entries(NAMES)) if (f[key as keyof typeof NAMES]) out.push(name);
  return out;
}
