/**
 * Dumps (GETLINK/GETADDR/GETROUTE/GETNEIGH with NLM_F_DUMP) on their own socket, strictly one at a time:
 * the kernel refuses a second dump on a socket with EBUSY, and the `netlink` package's multipart
 * reassembly breaks when an ACK lands between dump parts. A dump the kernel flags NLM_F_DUMP_INTR (the
 * table changed under it) is repeated up to DUMP_INTR_RETRIES times; a timed-out dump replaces the
 * socket, since the rest of the old dump may still be on its way.
 */
import { AttrStream, FlagsGet, rt } from './package.js';
import { NetlinkError, toNetlinkError } from './errors.js';
import { InFlightLimiter } from './limiter.js';
import { settled, type ManagedSocket } from './sockets.js';

/** How often a dump the kernel flagged NLM_F_DUMP_INTR is repeated before giving up. */
export const DUMP_INTR_RETRIES = 5;
const NLM_F_DUMP_INTR = 16;

export type DumpKind = 'link' | 'address' | 'route' | 'neighbor';

export type Dumper = <K extends DumpKind>(
  kind: K,
  type: number,
  data: Record<string, unknown>,
  object: string,
) => Promise<Extract<rt.Message, { kind: K }>[]>;

export function createDumper(
  dumpSock: ManagedSocket,
  dumpTimeout: number,
  counters: { requests: number; errors: number; timeouts: number },
): Dumper {
  const dumpQueue = new InFlightLimiter(1);
  /** A dump with NLM_F_DUMP_INTR retries; returns the parsed messages of `kind`. */
  return async function dump<K extends DumpKind>(
    kind: K,
    type: number,
    data: Record<string, unknown>,
    object: string,
  ): Promise<Extract<rt.Message, { kind: K }>[]> {
    const op = `dump ${kind}s`;
    return dumpQueue.run(async () => {
      for (let attempt = 0; ; attempt++) {
        counters.requests++;
        let gen;
        try {
          gen = dumpSock.current();
          const body = new AttrStream();
          const msg = { kind, data, attrs: {} } as unknown as rt.Message;
          if (kind === 'link') rt.formatLinkMessage(msg as rt.LinkMessage, body);
          else if (kind === 'address') rt.formatAddressMessage(msg as rt.AddressMessage, body);
          else if (kind === 'route') rt.formatRouteMessage(msg as rt.RouteMessage, body);
          else rt.formatNeighborMessage(msg as rt.NeighborMessage, body);
          const [msgs] = await gen.race(
            settled(
              gen.nl.socket.request(type, body.bufs as Uint8Array[], {
                flags: FlagsGet.DUMP,
                timeout: dumpTimeout,
              }),
            ),
          );
          if (msgs.some((m) => (m.flags & NLM_F_DUMP_INTR) !== 0)) {
            if (attempt < DUMP_INTR_RETRIES) continue;
            throw new NetlinkError('E_NETLINK', 'EINTR_DUMP', op, object, undefined, true);
          }
          return msgs
            .map((m) => rt.parseMessage(m.type, m.data))
            .filter((m) => m.kind === kind) as Extract<rt.Message, { kind: K }>[];
        } catch (err) {
          const e = toNetlinkError(err, op, object);
          counters.errors++;
          // A timed-out dump may still be streaming into the socket: start over on a fresh one.
          if (e.code === 'E_NETLINK_TIMEOUT') {
            counters.timeouts++;
            dumpSock.reset('dump timed out');
          }
          throw e;
        }
      }
    });
  };
}
