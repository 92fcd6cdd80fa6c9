/**
 * Route and neighbour events (RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_NEIGH, which also carries
 * AF_BRIDGE FDB entries) on a socket of their own, so that these busy groups can never overflow the
 * link events' socket (events.ts). The socket has the same large receive buffer; if it overflows
 * anyway the patched binding reports ENOBUFS instead of aborting (README "Dependency decisions"), the
 * socket is re-created and the listener gets `{ kind: 'resync' }` (it must re-read everything).
 * `mute` leaves the groups while the caller makes thousands of changes of its own.
 */
import { rt } from './package.js';
import type { Logger } from '../log/logger.js';
import { famOf, toFdbEntry, toNeighEntry, toRouteEntry } from './entries.js';
import type { EntryEvent, EntryWatch } from './ops.js';
import { ManagedSocket } from './sockets.js';

const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const RTM_NEWNEIGH = 28;
const RTM_DELNEIGH = 29;
const AF_BRIDGE = 7;
const GROUPS = ['IPV4_ROUTE', 'IPV6_ROUTE', 'NEIGH'] as const;

export interface EntryEventOptions {
  readonly netns: string | undefined;
  readonly recvBufferBytes: number;
  readonly log: Logger;
  readonly emit: (e: EntryEvent) => void;
}

/** The entry a route or neighbour message carries, or null (another message, or none to read). */
export function toEntryEvent(type: number, data: Buffer): EntryEvent | null {
  const isRoute = type === RTM_NEWROUTE || type === RTM_DELROUTE;
  if (!isRoute && type !== RTM_NEWNEIGH && type !== RTM_DELNEIGH) return null;
  const removed = type === RTM_DELROUTE || type === RTM_DELNEIGH;
  const m = rt.parseMessage(type, data);
  if (m.kind === 'route') {
    const route = toRouteEntry(m, famOf(m.data.family));
    return { kind: 'route', removed, route };
  }
  if (m.kind !== 'neighbor') return null;
  if (m.data.family === AF_BRIDGE) {
    const fdb = toFdbEntry(m);
    return fdb ? { kind: 'fdb', removed, fdb } : null;
  }
  const neigh = toNeighEntry(m);
  return neigh ? { kind: 'neigh', removed, neigh } : null;
}

export function startEntryEvents(
  o: EntryEventOptions,
): EntryWatch & { readonly socketErrors: number } {
  const { log, emit } = o;
  const sock = new ManagedSocket({
    netns: o.netns,
    recvBufferBytes: o.recvBufferBytes,
    ref: true,
    label: 'entry events',
    log,
  });
  let muted = false;
  const join = (on: boolean): void => {
    const gen = sock.current();
    for (const g of GROUPS) {
      if (on) gen.nl.addMembership(g);
      else gen.nl.dropMembership(g);
    }
  };
  const attach = (): void => {
    const gen = sock.current();
    gen.nl.socket.on('message', (msgs) => {
      for (const m of msgs) {
        let e: EntryEvent | null;
        try {
          e = toEntryEvent(m.type, m.data);
        } catch (err) {
          log.debug('unparsable entry event', { err });
          continue;
        }
        if (e) emit(e);
      }
    });
    if (!muted) join(true);
  };
  sock.onLost(() => {
    try {
      attach();
    } catch (err) {
      log.error('cannot re-create the entry event socket', { err });
    }
    emit({ kind: 'resync' });
  });
  attach();
  return {
    mute(on) {
      if (on === muted) return;
      muted = on;
      try {
        join(!on);
      } catch (err) {
        // a socket lost meanwhile is re-created (onLost) with the membership `muted` says
        log.debug('cannot change the entry event groups', { err });
      }
    },
    close: () => sock.close(),
    get socketErrors(): number {
      return sock.socketErrors;
    },
  };
}
