/**
 * Link event subscription: a socket joined to RTNLGRP_LINK and the IPv4/IPv6 address groups with a
 * large receive buffer (bursts of events must not overflow it). If it overflows anyway, the patched
 * binding reports an error instead of aborting; the socket is then re-created and subscribers get
 * `{ kind: 'resync' }` so they re-dump.
 */
import { rt } from './package.js';
import type { Logger } from '../log/logger.js';
import { bytesToIp } from './addr.js';
import { addrFlagNames } from './addr-flags.js';
import { toLinkInfo } from './linkinfo.js';
import type { AddrEntry, LinkEvent } from './ops.js';
import { ManagedSocket } from './sockets.js';

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const AF_INET6 = 10;
const RT_SCOPE_UNIVERSE = 0;

/** An address message as an AddrEntry (IFA_LOCAL, else IFA_ADDRESS), or null without either. */
export function toAddrEntry(m: rt.AddressMessage): AddrEntry | null {
  const ip = m.attrs.local ?? m.attrs.address;
  if (!ip) return null;
  return {
    index: m.data.index ?? 0,
    cidr: `${bytesToIp(ip)}/${m.data.prefixlen ?? 0}`,
    flags: addrFlagNames(m, m.data.family === AF_INET6 ? 6 : 4),
  };
}

export interface LinkEventOptions {
  readonly netns: string | undefined;
  readonly recvBufferBytes: number;
  readonly log: Logger;
  readonly emit: (e: LinkEvent) => void;
  /** A global-scope address added (or refreshed) or removed; the caller adds the link's state. */
  readonly address: (added: boolean, addr: AddrEntry) => void;
}

export function startLinkEvents(o: LinkEventOptions): ManagedSocket {
  const { netns, log, emit: emitLink } = o;
  const sock = new ManagedSocket({
    netns,
    recvBufferBytes: o.recvBufferBytes,
    ref: true,
    label: 'link events',
    log,
  });
  const attach = (): void => {
    const gen = sock.current();
    gen.nl.addMembership('LINK');
    gen.nl.addMembership('IPV4_IFADDR');
    gen.nl.addMembership('IPV6_IFADDR');
    gen.nl.socket.on('message', (msgs) => {
      for (const m of msgs) {
        const isAddr = m.type === RTM_NEWADDR || m.type === RTM_DELADDR;
        if (m.type !== RTM_NEWLINK && m.type !== RTM_DELLINK && !isAddr) continue;
        let parsed: rt.Message;
        try {
          parsed = rt.parseMessage(m.type, m.data);
        } catch (err) {
          log.debug('unparsable link event', { err });
          continue;
        }
        if (parsed.kind === 'address' && (parsed.data.scope ?? 0) === RT_SCOPE_UNIVERSE) {
          const addr = toAddrEntry(parsed);
          if (addr) o.address(m.type === RTM_NEWADDR, addr);
        }
        if (parsed.kind !== 'link') continue;
        const link = toLinkInfo(parsed);
        if (m.type === RTM_DELLINK)
          emitLink({ kind: 'removed', index: link.index, name: link.name });
        else emitLink({ kind: 'changed', link });
      }
    });
  };
  sock.onLost(() => {
    try {
      attach();
    } catch (err) {
      log.error('cannot re-create the link event socket', { err });
    }
    emitLink({ kind: 'resync' });
  });
  attach();
  return sock;
}
