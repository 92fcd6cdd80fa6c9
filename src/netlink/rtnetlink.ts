/**
 * `createNetlinkOps`: NetlinkOps over the patched `netlink` package (see ops.ts for the guarantees).
 *
 * Three sockets, each created inside the target netns: one for changes (pipelined, ≤ maxInFlight), one
 * for dumps (strictly one at a time: the kernel refuses a second dump on a socket with EBUSY, and the
 * package's multipart reassembly breaks if an ACK lands between dump parts), and one, created on first
 * subscription, for link events with a large receive buffer.
 */
import { AttrStream, FlagsGet, FlagsNew, rt, type RtNetlinkSocket } from 'netlink';
import { nullLogger, type Logger } from '../log/logger.js';
import {
  bytesToIp,
  bytesToMac,
  ipToBytes,
  macToBytes,
  parseCidr,
  cidrContains,
  type IpFamily,
} from './addr.js';
import { NetlinkError, isAbsent, toNetlinkError } from './errors.js';
import { InFlightLimiter } from './limiter.js';
import { formatVxlanLinkinfo, toLinkInfo, vxlanIncompatibility } from './linkinfo.js';
import type {
  AddrEntry,
  EnsuredLink,
  FdbEntry,
  FdbSpec,
  LinkEvent,
  LinkInfo,
  NeighEntry,
  NetlinkOps,
  NetlinkStats,
  RouteEntry,
  RouteSpec,
  VxlanLinkSpec,
  Mutation,
} from './ops.js';
import { ManagedSocket } from './sockets.js';
import { BulkSender } from './bulk.js';
import { encodeFdb, encodeNeigh, encodeRoute } from './encode.js';

export const DEFAULT_TIMEOUT_MS = 5_000;
export const DEFAULT_DUMP_TIMEOUT_MS = 15_000;
export const DEFAULT_MAX_IN_FLIGHT = 64;
/** Asked for; the kernel caps it at net.core.rmem_max (×2). */
export const EVENT_RECV_BUFFER_BYTES = 8 << 20;
/** How often a dump the kernel flagged NLM_F_DUMP_INTR is repeated before giving up. */
export const DUMP_INTR_RETRIES = 5;

const AF_INET = 2;
const AF_INET6 = 10;
const AF_BRIDGE = 7;
const RT_TABLE_MAIN = 254;
const RTNH_F_ONLINK = 4;
const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
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
const famOf = (n: number | undefined): IpFamily => (n === AF_INET6 ? 6 : 4);

type DumpKind = 'link' | 'address' | 'route' | 'neighbor';

/** `p`, marked as handled: when a race against socket loss settles first, its late rejection (e.g. the
 *  package's own timeout) must not become an unhandled rejection. */
function settled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

export function createNetlinkOps(options: NetlinkOpsOptions = {}): NetlinkOps {
  const log = options.log ?? nullLogger;
  const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const dumpTimeout = options.dumpTimeoutMs ?? DEFAULT_DUMP_TIMEOUT_MS;
  const limiter = new InFlightLimiter(options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
  const dumpQueue = new InFlightLimiter(1);
  const netns = options.netns;
  const reqSock = new ManagedSocket({ netns, recvBufferBytes: 1 << 20, label: 'request', log });
  const dumpSock = new ManagedSocket({ netns, recvBufferBytes: 1 << 20, label: 'dump', log });
  const bulkSock = new ManagedSocket({ netns, recvBufferBytes: 1 << 20, label: 'bulk', log });
  const bulk = new BulkSender(bulkSock, options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT, timeout);
  const eventRecv = options.eventRecvBufferBytes ?? EVENT_RECV_BUFFER_BYTES;
  let evSock: ManagedSocket | null = null;
  const linkListeners = new Set<(e: LinkEvent) => void>();
  const counters = { requests: 0, errors: 0, timeouts: 0 };

  const emitLink = (e: LinkEvent): void => {
    for (const l of linkListeners) {
      try {
        l(e);
      } catch (err) {
        log.error('link event listener threw', { err });
      }
    }
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
        return await Promise.race([settled(fn(gen.nl, { timeout })), gen.lost]);
      } catch (err) {
        const e = toNetlinkError(err, op, object);
        counters.errors++;
        if (e.code === 'E_NETLINK_TIMEOUT') counters.timeouts++;
        throw e;
      }
    });
  }

  /** A dump with NLM_F_DUMP_INTR retries; returns the parsed messages of `kind`. */
  async function dump<K extends DumpKind>(
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
          const [msgs] = await Promise.race([
            settled(
              gen.nl.socket.request(type, body.bufs as Uint8Array[], {
                flags: FlagsGet.DUMP,
                timeout: dumpTimeout,
              }),
            ),
            gen.lost,
          ]);
          if (msgs.some((m) => (m.flags & 16) /* NLM_F_DUMP_INTR */ !== 0)) {
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
    const why = vxlanIncompatibility(existing, spec);
    if (why !== null) {
      log.info('existing link is incompatible, re-creating it', { link: spec.name, reason: why });
      await deleteLink(existing.index);
      return { link: await createVxlan(spec), action: 'recreated' };
    }
    let updated = false;
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
    return msgs
      .filter((m) => m.data.index === index && (m.attrs.local ?? m.attrs.address))
      .map((m) => ({
        index,
        cidr: `${bytesToIp((m.attrs.local ?? m.attrs.address)!)}/${m.data.prefixlen ?? 0}`,
      }));
  }

  async function deleteAddr(index: number, cidr: string): Promise<void> {
    const c = parseCidr(cidr);
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
    const want = parseCidr(cidr);
    const wantText = `${want.ip}/${want.len}`;
    const have = await listAddrs(index, want.family);
    const removed: string[] = [];
    for (const a of have) {
      if (a.cidr === wantText) continue;
      const ip = a.cidr.split('/')[0]!;
      if (strayWithin.some((net) => cidrContains(net, ip))) {
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

  const routeText = (r: RouteSpec): string =>
    `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.oif ? ` dev ${r.oif}` : ''}${r.onlink ? ' onlink' : ''}`;

  const fdbText = (f: FdbSpec): string => `${f.mac} dst ${f.dst} dev ${f.ifindex}`;

  /** Encodes one mutation for the bulk path, with its op name and object text for errors. */
  function encodeMutation(m: Mutation): { msg: Buffer; op: string; object: string } {
    switch (m.op) {
      case 'routeReplace':
      case 'routeDelete':
        return {
          msg: encodeRoute(m.route, m.op === 'routeDelete'),
          op: m.op,
          object: routeText(m.route),
        };
      case 'neighReplace':
        return {
          msg: encodeNeigh(m.neigh, false),
          op: m.op,
          object: `${m.neigh.dst} lladdr ${m.neigh.mac} dev ${m.neigh.ifindex}`,
        };
      case 'neighDelete':
        return {
          msg: encodeNeigh(m.neigh, true),
          op: m.op,
          object: `${m.neigh.dst} dev ${m.neigh.ifindex}`,
        };
      case 'fdbReplace':
      case 'fdbDelete':
        return { msg: encodeFdb(m.fdb, m.op === 'fdbDelete'), op: m.op, object: fdbText(m.fdb) };
    }
  }

  function applyBatch(mutations: readonly Mutation[]): Promise<(NetlinkError | null)[]> {
    return Promise.all(
      mutations.map((m) => {
        let e: { msg: Buffer; op: string; object: string };
        try {
          e = encodeMutation(m);
        } catch (err) {
          return Promise.resolve(new NetlinkError('E_NETLINK', 'EINVAL', m.op, String(err), err));
        }
        return bulk.submit(e.msg, e.op, e.object);
      }),
    );
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
      const t = m.attrs.table ?? m.data.table ?? 0;
      if (t !== table) continue;
      const oif = m.attrs.oif ?? null;
      if (filter.oif !== undefined && oif !== filter.oif) continue;
      const zero = family === 4 ? '0.0.0.0' : '::';
      const dst = `${m.attrs.dst ? bytesToIp(m.attrs.dst) : zero}/${m.data.dstLen ?? 0}`;
      out.push({
        family,
        dst,
        gateway: m.attrs.gateway ? bytesToIp(m.attrs.gateway) : null,
        oif,
        onlink: ((m.data.flags?.__unknown ?? 0) & RTNH_F_ONLINK) !== 0,
        table: t,
        protocol: String(m.data.protocol ?? ''),
        type: String(m.data.type ?? ''),
      });
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
    return msgs
      .filter((m) => m.attrs.dst && (ifindex === undefined || m.data.ifindex === ifindex))
      .map((m) => ({
        family: famOf(m.data.family),
        ifindex: m.data.ifindex ?? 0,
        dst: bytesToIp(m.attrs.dst!),
        mac: m.attrs.lladdr && m.attrs.lladdr.length === 6 ? bytesToMac(m.attrs.lladdr) : null,
        permanent: m.data.state?.permanent === true,
      }));
  }

  async function fdbList(ifindex: number): Promise<FdbEntry[]> {
    const msgs = await dump(
      'neighbor',
      rt.MessageType.GETNEIGH,
      { family: AF_BRIDGE },
      `dev ${ifindex}`,
    );
    return msgs
      .filter((m) => m.data.ifindex === ifindex && m.attrs.lladdr && m.attrs.lladdr.length === 6)
      .map((m) => ({
        ifindex,
        mac: bytesToMac(m.attrs.lladdr!),
        dst:
          m.attrs.dst && (m.attrs.dst.length === 4 || m.attrs.dst.length === 16)
            ? bytesToIp(m.attrs.dst)
            : null,
        permanent: m.data.state?.permanent === true,
      }));
  }

  function startEvents(): ManagedSocket {
    const sock = new ManagedSocket({
      netns,
      recvBufferBytes: eventRecv,
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
    subscribeLinks(listener) {
      linkListeners.add(listener);
      if (!evSock) evSock = startEvents();
      return () => {
        linkListeners.delete(listener);
        if (linkListeners.size === 0 && evSock) {
          evSock.close();
          evSock = null;
        }
      };
    },
    stats(): NetlinkStats {
      return {
        requests: counters.requests + bulk.requests,
        errors: counters.errors + bulk.errors,
        timeouts: counters.timeouts + bulk.timeouts,
        socketErrors:
          reqSock.socketErrors +
          dumpSock.socketErrors +
          bulkSock.socketErrors +
          (evSock?.socketErrors ?? 0),
        inFlight: limiter.inFlight + bulk.inFlight,
        queued: limiter.queued + bulk.queued,
      };
    },
    close() {
      reqSock.close();
      dumpSock.close();
      bulkSock.close();
      evSock?.close();
      evSock = null;
      linkListeners.clear();
    },
  };
}
