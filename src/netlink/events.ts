/**
 * Link event subscription: a socket joined to RTNLGRP_LINK with a large receive buffer (bursts of
 * events must not overflow it). If it overflows anyway, the patched binding reports an error instead
 * of aborting; the socket is then re-created and subscribers get `{ kind: 'resync' }` so they re-dump.
 */
import { rt } from './package.js';
import type { Logger } from '../log/logger.js';
import { toLinkInfo } from './linkinfo.js';
import type { LinkEvent } from './ops.js';
import { ManagedSocket } from './sockets.js';

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;

export interface LinkEventOptions {
  readonly netns: string | undefined;
  readonly recvBufferBytes: number;
  readonly log: Logger;
  readonly emit: (e: LinkEvent) => void;
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
    gen.nl.socket.on('message', (msgs) => {
      for (const m of msgs) {
        if (m.type !== RTM_NEWLINK && m.type !== RTM_DELLINK) continue;
        let parsed: rt.Message;
        try {
          parsed = rt.parseMessage(m.type, m.data);
        } catch (err) {
          log.debug('unparsable link event', { err });
          continue;
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
