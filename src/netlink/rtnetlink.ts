/**
 * `createNetlinkOps`: NetlinkOps over the patched `netlink` package (see ops.ts for the guarantees).
 *
 * Four sockets, each created inside the target netns and each with an 'error' listener (sockets.ts):
 * - requests: link and address changes through the package, ≤ maxInFlight, each with a timeout;
 * - bulk: route / neighbour / FDB changes, hand-encoded and pipelined (bulk.ts, encode.ts);
 * - the native sender's own socket, on its own thread, for ordered streams (native-sender.ts; only
 *   when the native addon is available, created on first use);
 * - dumps: one at a time, NLM_F_DUMP_INTR retried (dump.ts);
 * - link events, created on first subscription, with a large receive buffer (events.ts);
 * - route / neighbour / FDB events, one socket per `watchEntries` call, likewise (entry-events.ts).
 */
import { FlagsNew, rt, type RtNetlinkSocket } from './package.js';
import { nullLogger, type Logger } from '../log/logger.js';
import { ipToBytes, macToBytes, cidrParts, type IpFamily } from './addr.js';
import { cidrCovers } from '../ip/index.js';
import { NetlinkError, isAbsent, toNetlinkError } from './errors.js';
import { InFlightLimiter } from './limiter.js';
import {
  formatVxlanLearning,
  formatVxlanLinkinfo,
  toLinkInfo,
  vxlanIncompatibility,
} from './linkinfo.js';
import type {
  AddrEntry,
  EnsuredLink,
  EntryWatch,
  FdbEntry,
  LinkEvent,
  LinkInfo,
  NeighEntry,
  NetlinkOps,
  NetlinkStats,
  RouteEntry,
  VxlanLinkSpec,
  Mutation,
} from './ops.js';
import { ManagedSocket } from './sockets.js';
import { BulkSender } from './bulk.js';
import { NativeSender } from './native-sender.js';
import { createDumper, DUMP_INTR_RETRIES } from './dump.js';
import { startLinkEvents, toAddrEntry } from './events.js';
import { startEntryEvents } from './entry-events.js';
import { routeTable, toFdbEntry, toNeighEntry, toRouteEntry } from './entries.js';
import { settled } from './sockets.js';

export const DEFAULT_TIMEOUT_MS = 5_000;
export const DEFAULT_DUMP_TIMEOUT_MS = 15_000;
export const DEFAULT_MAX_IN_FLIGHT = 64;
/** Asked for; the kernel caps it at net.core.rmem_max (×2). */
export const EVENT_RECV_BUFFER_BYTES = 8 << 20;
export { DUMP_INTR_RETRIES };

const AF_INET = 2;
const AF_INET6 = 10;
const AF_BRIDGE = 7;
const RT_TABLE_MAIN = 254;
const REPLACE = { flags: FlagsNew.CREATE | FlagsNew.REPLACE };

export interface NetlinkOpsOptions {
  /** Named netns (or path) to create the sockets in; default: the current one. */
  readonly netns?: string;
  readonly timeoutMs?: number;
  readonly dumpTimeoutMs?: number;
  readonly maxInFlight?: number;
  readonly eventRecvBufferBytes?: number;
  readonly log?: Logger;
}

const af = (f: IpFamily): number => (f === 4 ? AF_INET : AF_INET6);

export function createNetlinkOps(options: NetlinkOpsOptions = {}): NetlinkOps {
  const log = options.log ?? nullLogger;
  const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const dumpTimeout = options.dumpTimeoutMs ?? DEFAULT_DUMP_TIMEOUT_MS;
  const limiter = new InFlightLimiter(options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
  const netns = options.netns;
  const reqSock = new ManagedSocket({ netns, recvBufferBytes: 1 << 20, label: 'request', log });
  const dumpSock = new ManagedSocket({ netns, recvBufferBytes: 1 << 20, label: 'dump', log });
  const bulkSock = new ManagedSocket({ netns, recvBufferBytes: 1 << 20, label: 'bulk', log });
  const bulk = new BulkSender(bulkSock, options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT, timeout);
  const native = NativeSender.available() ? new NativeSender({ netns, timeoutMs: timeout }) : null;
  const eventRecv = options.eventRecvBufferBytes ?? EVENT_RECV_BUFFER_BYTES;
  let evSock: ManagedSocket | null = null;
  const linkListeners = new Set<(e: LinkEvent) => void>();
  const entryWatches = new Set<EntryWatch & { readonly socketErrors: number }>();
  const counters = { requests: 0, errors: 0, timeouts: 0 };
  const dump = createDumper(dumpSock, dumpTimeout, counters);

  const emitLink = (e: LinkEvent): void => {
    for (const l of linkListeners) {
      try {
        l(e);
      } catch (err) {
        log.error('link event listener threw', { err });
      }
    }
  };
  // Address events carry their link's state, read in event order; a link gone meanwhile drops it.
  let addressQueue = Promise.resolve();
  const emitAddress = (added: boolean, addr: AddrEntry): void => {
    addressQueue = addressQueue.then(async () => {
      const link = await getLinkByIndex(addr.index).catch(() => null);
      if (link && linkListeners.size > 0) emitLink({ kind: 'address', added, link, addr });
    });
  };
  // A lost request socket may have dropped changes: subscribers re-dump.
  reqSock.onLost(() => emitLink({ kind: 'resync' }));
  bulkSock.onLost(() => emitLink({ kind: 'resync' }));

  /** Runs one change request under the in-flight bound, the timeout and the socket-loss race. */
  function request<T>(
    op: string,
    object: string,
    fn: (nl: RtNetlinkSocket, t: { timeout: number }) => Promise<T>,
  ): Promise<T> {
    return limiter.run(async () => {
      counters.requests++;
      try {
        const gen = reqSock.current();
        return await gen.race(settled(fn(gen.nl, { timeout })));
      } catch (err) {
        const e = toNetlinkError(err, op, object);
        counters.errors++;
        if (e.code === 'E_NETLINK_TIMEOUT') counters.timeouts++;
        throw e;
      }
    });
  }

  async function listLinks(): Promise<LinkInfo[]> {
    const msgs = await dump('link', rt.MessageType.GETLINK, {}, 'all');
    return msgs.map((m) => toLinkInfo(m));
  }

  async function getLink(name: string): Promise<LinkInfo | null> {
    try {
      const msgs = await request('getLink', name, (nl, t) => nl.getLink({}, { ifname: name }, t));
      return msgs[0] ? toLinkInfo(msgs[0]) : null;
    } catch (err) {
      if (isAbsent(err)) return null;
      throw err;
    }
  }

  async function getLinkByIndex(index: number): Promise<LinkInfo | null> {
    try {
      const msgs = await request('getLink', `index ${index}`, (nl, t) =>
        nl.getLink({ index }, {}, t),
      );
      return msgs[0] ? toLinkInfo(msgs[0]) : null;
    } catch (err) {
      if (isAbsent(err)) return null;
      throw err;
    }
  }

  const setLink = (
    op: string,
    index: number,
    attrs: Record<string, unknown>,
    data: Record<string, unknown> = {},
  ): Promise<void> =>
    request(op, `link ${index}`, (nl, t) => nl.setLink({ index, ...data }, attrs, t)).then(
      () => undefined,
    );

  async function createVxlan(spec: VxlanLinkSpec): Promise<LinkInfo> {
    await request('createVxlanLink', spec.name, (nl, t) =>
      nl.newLink(
        {},
        {
          ifname: spec.name,
          mtu: spec.mtu,
          address: macToBytes(spec.mac),
          linkinfo: formatVxlanLinkinfo(spec),
        },
        { flags: FlagsNew.CREATE | FlagsNew.EXCL, ...t },
      ),
    );
    const link = await getLink(spec.name);
    if (!link) throw new NetlinkError('E_NETLINK', 'ENODEV', 'createVxlanLink', spec.name);
    return link;
  }

  async function ensureVxlanLink(spec: VxlanLinkSpec): Promise<EnsuredLink> {
    const existing = await getLink(spec.name);
    if (!existing) return { link: await createVxlan(spec), action: 'created' };
    // learning is changed in place (`ip link set weft.1 type vxlan learning` by another actor):
    // re-creating the device would drop every peer's entries
    const learning = existing.vxlan?.learning;
    const why = vxlanIncompatibility(existing, { ...spec, learning: learning ?? spec.learning });
    if (why !== null) {
      log.info('existing link is incompatible, re-creating it', { link: spec.name, reason: why });
      await deleteLink(existing.index);
      return { link: await createVxlan(spec), action: 'recreated' };
    }
    let updated = false;
    if (learning !== spec.learning) {
      // RTM_NEWLINK without NLM_F_CREATE: the kernel's changelink (RTM_SETLINK ignores IFLA_LINKINFO)
      await request('setLinkLearning', spec.name, (nl, t) =>
        nl.newLink({ index: existing.index }, { linkinfo: formatVxlanLearning(spec.learning) }, t),
      );
      updated = true;
    }
    if (existing.mtu !== spec.mtu) {
      await setLink('setLinkMtu', existing.index, { mtu: spec.mtu });
      updated = true;
    }
    if (existing.mac !== spec.mac) {
      await setLink('setLinkMac', existing.index, { address: macToBytes(spec.mac) });
      updated = true;
    }
    if (!updated) return { link: existing, action: 'reused' };
    return { link: (await getLinkByIndex(existing.index)) ?? existing, action: 'updated' };
  }

  async function deleteLink(index: number): Promise<void> {
    await request('deleteLink', `link ${index}`, (nl, t) => nl.delLink({ index }, {}, t));
  }

  async function listAddrs(index: number, family: IpFamily): Promise<AddrEntry[]> {
    const msgs = await dump(
      'address',
      rt.MessageType.GETADDR,
      { family: af(family) },
      `link ${index}`,
    );
    return msgs.flatMap((m) => (m.data.index === index ? (toAddrEntry(m) ?? []) : []));
  }

  async function deleteAddr(index: number, cidr: string): Promise<void> {
    const c = cidrParts(cidr);
    const a = ipToBytes(c.ip);
    await request('deleteAddr', `${cidr} dev ${index}`, (nl, t) =>
      nl.delAddress(
        { family: af(c.family), prefixlen: c.len, index },
        c.family === 4 ? { local: a, address: a } : { address: a },
        t,
      ),
    );
  }

  async function ensureAddr(
    index: number,
    cidr: string,
    strayWithin: readonly string[] = [],
  ): Promise<string[]> {
    const want = cidrParts(cidr);
    const wantText = `${want.ip}/${want.len}`;
    const have = await listAddrs(index, want.family);
    const removed: string[] = [];
    for (const a of have) {
      if (a.cidr === wantText) continue;
      const ip = a.cidr.split('/')[0]!;
      if (strayWithin.some((net) => cidrCovers(net, ip))) {
        await deleteAddr(index, a.cidr).catch((err: unknown) => {
          if (!isAbsent(err)) throw err;
        });
        removed.push(a.cidr);
      }
    }
    if (!have.some((a) => a.cidr === wantText)) {
      const b = ipToBytes(want.ip);
      await request('addAddr', `${wantText} dev ${index}`, (nl, t) =>
        nl.newAddress(
          {
            family: af(want.family),
            prefixlen: want.len,
            index,
            ...(want.family === 6 ? { flags: { nodad: true } } : {}),
          },
          want.family === 4
            ? { local: b, address: b }
            : { address: b, ...(want.family === 6 ? { flags: { nodad: true } } : {}) },
          { ...REPLACE, ...t },
        ),
      );
    }
    return removed;
  }

  function applyBatch(mutations: readonly Mutation[]): Promise<(NetlinkError | null)[]> {
    return bulk.submit(mutations);
  }

  async function one(m: Mutation): Promise<void> {
    const [err] = await applyBatch([m]);
    if (err) throw err;
  }

  async function routeList(
    family: IpFamily,
    filter: { oif?: number; table?: number } = {},
  ): Promise<RouteEntry[]> {
    const table = filter.table ?? RT_TABLE_MAIN;
    const msgs = await dump(
      'route',
      rt.MessageType.GETROUTE,
      { family: af(family) },
      `family ${family}`,
    );
    const out: RouteEntry[] = [];
    for (const m of msgs) {
      if (routeTable(m) !== table) continue;
      if (filter.oif !== undefined && (m.attrs.oif ?? null) !== filter.oif) continue;
      out.push(toRouteEntry(m, family));
    }
    return out;
  }

  async function neighList(family: IpFamily, ifindex?: number): Promise<NeighEntry[]> {
    const msgs = await dump(
      'neighbor',
      rt.MessageType.GETNEIGH,
      { family: af(family) },
      `family ${family}`,
    );
    return msgs.flatMap((m) => {
      const n = ifindex === undefined || m.data.ifindex === ifindex ? toNeighEntry(m) : null;
      return n ? [n] : [];
    });
  }

  async function fdbList(ifindex: number): Promise<FdbEntry[]> {
    const msgs = await dump(
      'neighbor',
      rt.MessageType.GETNEIGH,
      { family: AF_BRIDGE },
      `dev ${ifindex}`,
    );
    return msgs.flatMap((m) => {
      const f = m.data.ifindex === ifindex ? toFdbEntry(m) : null;
      return f ? [f] : [];
    });
  }

  return {
    getLink,
    getLinkByIndex,
    listLinks,
    ensureVxlanLink,
    deleteLink,
    setLinkUp: (index) =>
      setLink('setLinkUp', index, {}, { change: { up: true }, flags: { up: true } }),
    setLinkMtu: (index, mtu) => setLink('setLinkMtu', index, { mtu }),
    setLinkMac: (index, mac) => setLink('setLinkMac', index, { address: macToBytes(mac) }),
    listAddrs,
    ensureAddr,
    deleteAddr,
    routeReplace: (route) => one({ op: 'routeReplace', route }),
    routeDelete: (route) => one({ op: 'routeDelete', route }),
    routeList,
    neighReplace: (neigh) => one({ op: 'neighReplace', neigh }),
    neighDelete: (neigh) => one({ op: 'neighDelete', neigh }),
    neighList,
    fdbReplace: (fdb) => one({ op: 'fdbReplace', fdb }),
    fdbDelete: (fdb) => one({ op: 'fdbDelete', fdb }),
    fdbList,
    applyBatch,
    ...(native ? { openStream: () => native.open() } : {}),
    subscribeLinks(listener) {
      linkListeners.add(listener);
      if (!evSock)
        evSock = startLinkEvents({
          netns,
          recvBufferBytes: eventRecv,
          log,
          emit: emitLink,
          address: emitAddress,
        });
      return () => {
        linkListeners.delete(listener);
        if (linkListeners.size === 0 && evSock) {
          evSock.close();
          evSock = null;
        }
      };
    },
    watchEntries(listener) {
      const watch = startEntryEvents({ netns, recvBufferBytes: eventRecv, log, emit: listener });
      entryWatches.add(watch);
      return {
        mute: (on) => watch.mute(on),
        close() {
          entryWatches.delete(watch);
          watch.close();
        },
      };
    },
    stats(): NetlinkStats {
      return {
        requests: counters.requests + bulk.requests + (native?.requests ?? 0),
        errors: counters.errors + bulk.errors + (native?.errors ?? 0),
        timeouts: counters.timeouts + bulk.timeouts + (native?.timeouts ?? 0),
        socketErrors:
          (native?.socketErrors ?? 0) +
          reqSock.socketErrors +
          dumpSock.socketErrors +
          bulkSock.socketErrors +
          (evSock?.socketErrors ?? 0) +
          [...entryWatches].reduce((n, w) => n + w.socketErrors, 0),
        inFlight: limiter.inFlight + bulk.inFlight + (native?.inFlight ?? 0),
        queued: limiter.queued + bulk.queued,
      };
    },
    close() {
      reqSock.close();
      dumpSock.close();
      bulkSock.close();
      native?.close();
      evSock?.close();
      evSock = null;
      linkListeners.clear();
      for (const w of entryWatches) w.close();
      entryWatches.clear();
    },
  };
}
