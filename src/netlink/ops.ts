/**
 * `NetlinkOps`: the typed façade every weft component uses to program the kernel (docs/design.md C6). Values
 * are plain data with canonical strings (addresses, CIDRs, MACs); no `netlink` package type leaks out.
 *
 * Guarantees of every implementation over a real socket (`createNetlinkOps`):
 * - every request carries a timeout (default `DEFAULT_TIMEOUT_MS`); a lost answer rejects with
 *   NetlinkError E_NETLINK_TIMEOUT instead of hanging;
 * - at most `maxInFlight` (default 64) requests are outstanding; more wait in a FIFO queue, so a burst of
 *   thousands of calls neither overflows the socket nor aborts the process;
 * - kernel rejections are NetlinkError E_NETLINK with `errno` ('EEXIST', 'ESRCH', …);
 * - a socket error (e.g. ENOBUFS) never escapes as an unhandled 'error': the socket is replaced and link
 *   subscribers get a `{ kind: 'resync' }` event, after which they must re-dump what they care about;
 * - dumps flagged NLM_F_DUMP_INTR (the table changed during the dump) are retried
 *   `DUMP_INTR_RETRIES` times, then fail with errno 'EINTR_DUMP' (retryable).
 *
 * Idempotency: `*Replace` create or update (NLM_F_CREATE|NLM_F_REPLACE). `*Delete` reject with an
 * "absent" errno (see `isAbsent`) when there is nothing to delete; callers that do best-effort removal
 * treat that as success.
 */
import type { IpFamily } from './addr.js';
import type { NetlinkError } from './errors.js';

export interface VxlanAttrs {
  readonly vni: number;
  /** Tunnel source address (IPv4 or IPv6), null when unset. */
  readonly local: string | null;
  readonly underlayIndex: number | null;
  /** UDP destination port. */
  readonly port: number;
  readonly learning: boolean;
  readonly gbp: boolean;
  readonly group: string | null;
  readonly l2miss: boolean;
  readonly l3miss: boolean;
}

export interface LinkInfo {
  readonly index: number;
  readonly name: string;
  /** IFLA_INFO_KIND ('vxlan', 'bridge', 'veth', …); null for devices without one (lo, physical). */
  readonly kind: string | null;
  readonly mtu: number;
  readonly mac: string | null;
  readonly up: boolean;
  /** Present when kind is 'vxlan'. */
  readonly vxlan?: VxlanAttrs;
}

export interface VxlanLinkSpec {
  readonly name: string;
  readonly vni: number;
  /** Tunnel source address; its family selects IFLA_VXLAN_LOCAL or LOCAL6. */
  readonly local: string;
  readonly underlayIndex: number;
  readonly port: number;
  readonly learning: boolean;
  readonly gbp: boolean;
  readonly mtu: number;
  readonly mac: string;
}

export interface EnsuredLink {
  readonly link: LinkInfo;
  /** What was done: reused as is, reused with MTU/MAC corrected, or (re)created. */
  readonly action: 'reused' | 'updated' | 'created' | 'recreated';
}

export interface AddrEntry {
  readonly index: number;
  /** Address with its prefix length, e.g. '10.5.1.0/32'. */
  readonly cidr: string;
  /**
   * Its ifa_flags by the names `ip addr` prints ('temporary', 'deprecated', 'tentative', 'dadfailed',
   * 'nodad', 'permanent', …; addr-flags.ts). Absent in fakes that do not model them.
   */
  readonly flags?: readonly string[];
}

/** A route in the main table (or `table`). `dst` is a CIDR with the network address. */
export interface RouteSpec {
  readonly dst: string;
  readonly gateway?: string | null;
  readonly oif?: number | null;
  /** RTNH_F_ONLINK: the gateway is on the link even without a matching prefix. */
  readonly onlink?: boolean;
  readonly table?: number;
}

export interface RouteEntry extends RouteSpec {
  readonly family: IpFamily;
  readonly gateway: string | null;
  readonly oif: number | null;
  readonly onlink: boolean;
  readonly table: number;
  /** 'STATIC', 'KERNEL', 'BOOT', … or the number as a string. */
  readonly protocol: string;
  /** 'UNICAST', 'LOCAL', … */
  readonly type: string;
}

/** A permanent neighbour (ARP / NDP) entry. */
export interface NeighSpec {
  readonly ifindex: number;
  readonly dst: string;
  readonly mac: string;
}

export interface NeighEntry {
  readonly family: IpFamily;
  readonly ifindex: number;
  readonly dst: string;
  readonly mac: string | null;
  readonly permanent: boolean;
}

/** A bridge forwarding entry on a VXLAN device (AF_BRIDGE, NTF_SELF): MAC → remote VTEP `dst`. */
export interface FdbSpec {
  readonly ifindex: number;
  readonly mac: string;
  readonly dst: string;
}

export interface FdbEntry {
  readonly ifindex: number;
  readonly mac: string;
  readonly dst: string | null;
  readonly permanent: boolean;
}

export type LinkEvent =
  | { readonly kind: 'added' | 'changed'; readonly link: LinkInfo }
  | { readonly kind: 'removed'; readonly index: number; readonly name: string }
  /**
   * A global-scope address added to (or refreshed on) `link`, or removed from it; `link` is the
   * link's state when the event was read. Link-local and host-scope addresses are not reported.
   */
  | {
      readonly kind: 'address';
      readonly added: boolean;
      readonly link: LinkInfo;
      readonly addr: AddrEntry;
    }
  /** The event socket was lost and re-created: events may have been missed, re-dump. */
  | { readonly kind: 'resync' };

/**
 * A route, neighbour or FDB entry added, changed (`removed: false`) or deleted, by anyone (weft's own
 * changes come back too), or 'resync' when events were lost (the socket overflowed): re-read.
 */
export type EntryEvent =
  | { readonly kind: 'route'; readonly removed: boolean; readonly route: RouteEntry }
  | { readonly kind: 'neigh'; readonly removed: boolean; readonly neigh: NeighEntry }
  | { readonly kind: 'fdb'; readonly removed: boolean; readonly fdb: FdbEntry }
  | { readonly kind: 'resync' };

/** A subscription to entry events (`NetlinkOps.watchEntries`). */
export interface EntryWatch {
  /**
   * Leaves (true) or joins again (false) the event groups: muted, the kernel queues nothing for this
   * socket (a full reconcile's thousands of own changes would overflow it).
   */
  mute(on: boolean): void;
  close(): void;
}

/** One route / neighbour / FDB change, for `applyBatch`. */
export type Mutation =
  | { readonly op: 'routeReplace' | 'routeDelete'; readonly route: RouteSpec }
  | { readonly op: 'neighReplace'; readonly neigh: NeighSpec }
  | { readonly op: 'neighDelete'; readonly neigh: Pick<NeighSpec, 'ifindex' | 'dst'> }
  | { readonly op: 'fdbReplace' | 'fdbDelete'; readonly fdb: FdbSpec };

/** An ordered stream of mutations (`NetlinkOps.openStream`). */
export interface MutationStream {
  /** Queues `m` (sent while the caller keeps pushing); returns its index in `end`'s results. */
  push(m: Mutation): number;
  /** Resolves with one result per pushed mutation, in push order: null or the NetlinkError; never
   *  rejects. */
  end(): Promise<(NetlinkError | null)[]>;
}

export interface NetlinkStats {
  readonly requests: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly socketErrors: number;
  readonly inFlight: number;
  readonly queued: number;
}

export interface NetlinkOps {
  getLink(name: string): Promise<LinkInfo | null>;
  getLinkByIndex(index: number): Promise<LinkInfo | null>;
  listLinks(): Promise<LinkInfo[]>;
  /**
   * Makes device `spec.name` a VXLAN device matching `spec`: an existing compatible one (kind, VNI,
   * local, underlay, port, GBP, no group, no l2/l3miss) is reused and its learning, MTU and MAC
   * corrected; an incompatible one (or another kind of link with that name) is deleted and recreated.
   * The link is not set up here.
   */
  ensureVxlanLink(spec: VxlanLinkSpec): Promise<EnsuredLink>;
  deleteLink(index: number): Promise<void>;
  setLinkUp(index: number): Promise<void>;
  setLinkMtu(index: number, mtu: number): Promise<void>;
  setLinkMac(index: number, mac: string): Promise<void>;

  listAddrs(index: number, family: IpFamily): Promise<AddrEntry[]>;
  /**
   * Ensures `cidr` is on link `index`, and removes the link's other addresses of that family that lie
   * inside any of `strayWithin` (e.g. the cluster network, so that a previous lease's address goes).
   * Returns the removed addresses.
   */
  ensureAddr(index: number, cidr: string, strayWithin?: readonly string[]): Promise<string[]>;
  deleteAddr(index: number, cidr: string): Promise<void>;

  routeReplace(route: RouteSpec): Promise<void>;
  routeDelete(route: RouteSpec): Promise<void>;
  /** Routes of `family` in the main table (or `table`), optionally only those leaving by `oif`. */
  routeList(family: IpFamily, filter?: { oif?: number; table?: number }): Promise<RouteEntry[]>;

  neighReplace(neigh: NeighSpec): Promise<void>;
  neighDelete(neigh: Pick<NeighSpec, 'ifindex' | 'dst'>): Promise<void>;
  neighList(family: IpFamily, ifindex?: number): Promise<NeighEntry[]>;

  fdbReplace(fdb: FdbSpec): Promise<void>;
  fdbDelete(fdb: FdbSpec): Promise<void>;
  fdbList(ifindex: number): Promise<FdbEntry[]>;

  /**
   * Applies independent changes as fast as the kernel takes them (hand-encoded, several per sendmsg,
   * still ≤ maxInFlight unacknowledged). Resolves with one result per mutation, in order: null for
   * success or the NetlinkError; never rejects. No ordering between the mutations of one call: callers
   * that need "neighbour before route" issue the phases as separate calls.
   */
  applyBatch(mutations: readonly Mutation[]): Promise<(NetlinkError | null)[]>;

  /**
   * A stream whose mutations the kernel applies strictly in push order, sent by weft's native
   * rtnetlink sender thread while the caller goes on pushing (src/netlink/native-sender.ts): the full
   * reconcile's path. Absent when the native addon is not available (callers use `applyBatch`).
   */
  openStream?(): MutationStream;

  /**
   * Link add/change/remove events, global addresses added or removed ('address'), and 'resync' after a
   * lost socket. Returns an unsubscribe function.
   */
  subscribeLinks(listener: (event: LinkEvent) => void): () => void;

  /**
   * Route (IPv4, IPv6), neighbour and FDB events on a socket of their own (entry-events.ts); absent in
   * fakes that do not model them.
   */
  watchEntries?(listener: (event: EntryEvent) => void): EntryWatch;

  stats(): NetlinkStats;
  /** Closes every socket; pending requests reject with ESOCKET. Idempotent. */
  close(): void;
}
