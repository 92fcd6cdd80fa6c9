/**
 * The UDP backend's packet forwarder, as a documented interface (docs/design.md C7–C9).
 *
 * A Forwarder moves IP packets between a TUN device and a UDP socket in flannel's wire format: one IP
 * packet per UDP datagram, no extra header, so weft and flannel UDP hosts interoperate. Packets never
 * pass through JavaScript: the native implementation (`NativeForwarder`) runs its own thread, and this
 * interface carries only small commands (set a route, delete a route, close) and counters.
 * `MemoryForwarder` is its in-memory twin for unit tests of the backend; both pass the same contract
 * suite (test/dataplane/forwarder.contract.ts).
 *
 * Forwarding rules (both implementations document the same behaviour; only the native one moves packets):
 * - TUN → UDP: the destination is looked up by longest prefix match; a hit sends the packet to the
 *   route's peer (TTL − 1, dropped at 0); a miss drops it and answers IPv4 senders with ICMP
 *   net-unreachable (never for ICMP errors or non-first fragments; rate-limited).
 * - UDP → TUN: a datagram is accepted only from the public address of a peer some route points to,
 *   only if its inner source address lies in a subnet routed to that same peer, and only if its inner
 *   destination lies in one of this host's own subnets (`localSubnets`: a peer must not use this host
 *   as a relay to other peers, the LAN or link-local addresses); anything else is dropped and counted
 *   by reason. TTL − 1, dropped at 0. TCP segments coalesced into one TUN write have their checksums
 *   verified first (a corrupted one is dropped, `badChecksum`).
 * - Congestion: the forwarder never waits for a socket. Every peer sends through its own socket, so a
 *   peer whose path is congested loses only its own packets (`congested`); receiving, other peers and
 *   route updates go on.
 */
import type { EventEmitter } from 'node:events';

export interface ForwarderOptions {
  /**
   * File descriptor of the TUN device (IFF_TUN|IFF_NO_PI; open it with `vnetHdr: true` for the
   * TSO/GSO fast path). Ownership passes to the forwarder when `start` succeeds: it closes the fd on
   * `close()`. When `start` throws, the caller still owns it.
   */
  readonly tunFd: number;
  /** UDP port to bind (flannel: 8285). 0 binds an ephemeral port (tests); see `localPort`. */
  readonly port: number;
  /** IPv4 address to bind (flannel binds the interface address). Default '0.0.0.0'. */
  readonly bindAddress?: string;
  /** MTU of the TUN device (underlay MTU − 28). */
  readonly mtu: number;
  /**
   * This host's own subnets (its lease's IPv4 and IPv6 subnet), at most 16 CIDRs: the only inner
   * destinations accepted from peers. Empty = nothing from peers is delivered. See setLocalSubnets.
   */
  readonly localSubnets: readonly string[];
  /** Most routes the table takes (a bound on hostile input); default 1048576. Beyond it a new route
   *  fails with ENOSPC (reported by `settled()`). */
  readonly maxRoutes?: number;
  /**
   * Loop threads: 1 = one for both directions; 2 = one per direction (TUN → UDP and UDP → TUN run at
   * the same time, so a TCP stream's data and its ACKs never wait for each other). Default: 2 when at
   * least two CPUs are online, else 1.
   */
  readonly threads?: 1 | 2;
  /**
   * Nice value of the loop threads, -20..19 (default -10). The kernel's own tunnels forward in softirq
   * context, ahead of every task; at nice 0 each packet waits behind the host's other work. Needs
   * CAP_SYS_NICE (weftd runs as root); without it the threads keep the process's priority.
   */
  readonly nice?: number;
}

/** One route: packets for `dst` go to `peerIp:port` over UDP. */
export interface ForwarderRoute {
  /** Canonical CIDR ('10.244.2.0/24', 'fd00:10:244:2::/64'). */
  readonly dst: string;
  /** Public IPv4 address of the peer host (also the only source accepted for `dst`'s traffic). */
  readonly peerIp: string;
  readonly port: number;
}

/** Drop counters by reason. */
export interface ForwarderDrops {
  /** TUN → UDP: no route for the destination (an ICMP net-unreachable may have been sent). */
  readonly noRoute: number;
  /** UDP → TUN: datagram from an address that is no route's peer. */
  readonly unknownPeer: number;
  /** UDP → TUN: inner source address outside every subnet routed to the sending peer. */
  readonly badInnerSource: number;
  /** UDP → TUN: inner destination outside this host's own subnets (`localSubnets`). */
  readonly badInnerDest: number;
  /** UDP → TUN: a TCP segment to be coalesced failed its checksum (corrupted on the way). */
  readonly badChecksum: number;
  /** TUN → UDP: the peer's send socket was full (its path is congested); never waited for. */
  readonly congested: number;
  /** Either way: truncated, bad version/IHL/lengths, bad IPv4 header checksum, … */
  readonly malformed: number;
  /** TTL / hop limit expired. */
  readonly ttl: number;
  /** A segmentation offload type or header layout the forwarder does not handle. */
  readonly unsupported: number;
  /** The write to the TUN device failed. */
  readonly tunWrite: number;
  /** The UDP send failed. */
  readonly udpSend: number;
}

/** Offloads in use. Any `false` is a fallback: slower, still correct (reported once in the log). */
export interface ForwarderOffloads {
  /** TUN delivers virtio-net headers (needed for TSO and coalescing). */
  readonly vnetHdr: boolean;
  /** TUN hands over TCP super-packets (TUNSETOFFLOAD TSO4/TSO6). */
  readonly tso: boolean;
  /** Segments go out as one send with UDP_SEGMENT. */
  readonly udpGso: boolean;
  /** The socket receives UDP_GRO batches. */
  readonly udpGro: boolean;
}

/** Counters since start, plain integers (snapshots; never decrease). */
export interface ForwarderStats {
  /** IP packets / bytes sent as UDP datagrams (after segmentation). */
  readonly txPackets: number;
  readonly txBytes: number;
  /** IP packets / bytes received over UDP and written to the TUN. */
  readonly rxPackets: number;
  readonly rxBytes: number;
  /** Packets read from the TUN (a super-packet counts once) and writes to it. */
  readonly tunReads: number;
  readonly tunWrites: number;
  /** Super-packets segmented; UDP_SEGMENT sends; UDP_GRO receives of more than one datagram; TUN
   *  writes that carried a coalesced super-packet. */
  readonly tsoPackets: number;
  readonly gsoSends: number;
  readonly groReceives: number;
  readonly coalescedWrites: number;
  readonly icmpSent: number;
  readonly drops: ForwarderDrops;
  /** Route commands accepted, and applied by the forwarder (equal: the table is current). */
  readonly commandsQueued: number;
  readonly commandsApplied: number;
  /** Applied commands that failed (ENOMEM, ENOSPC): the route is not in the table. */
  readonly commandsFailed: number;
  /** Peers with their own send socket (0 when the kernel lacks SO_REUSEPORT: peers share one). */
  readonly peerSockets: number;
  /** Loop threads in use (1, or 2: one per direction). */
  readonly threads: number;
  /** Routes in the forwarder's table (as of the last applied command). */
  readonly routes: number;
  readonly offloads: ForwarderOffloads;
  /** False once closed or stopped by a fatal error. */
  readonly running: boolean;
}

/**
 * Events: `'error'` (err: WeftError E_NATIVE with `details` {code, errno, syscall}) when the forwarder
 * stops by itself (e.g. its TUN device was deleted: details {code 'EBADFD', syscall 'read'}, see
 * isTunDeleted in tun.ts). The listener decides what follows; without one the error is logged.
 */
export interface Forwarder extends Pick<EventEmitter, 'on' | 'once' | 'off'> {
  /** The UDP port actually bound. */
  readonly localPort: number;
  /** Offloads that are missing (empty on the fast path), e.g. ['udpGso']. */
  readonly fallback: readonly string[];
  /**
   * Adds or replaces the route for `dst` (an IPv4 or IPv6 CIDR without host bits) to `peerIp`
   * (IPv4) and `port` (1–65535). Idempotent. Validated synchronously (TypeError with an exact
   * message); applied by the forwarder in call order, before it handles its next batch of packets
   * (`settled()` resolves once applied). Throws E_NATIVE (details.code 'ESHUTDOWN') after close.
   */
  setRoute(dst: string, peerIp: string, port: number): void;
  /** Removes the route for exactly `dst`; returns false when there was none. Same ordering and
   *  errors as setRoute. */
  deleteRoute(dst: string): boolean;
  /**
   * Replaces this host's own subnets (see ForwarderOptions.localSubnets), in order with the route
   * commands and atomically (never a moment with none). TypeError for a bad list.
   */
  setLocalSubnets(cidrs: readonly string[]): void;
  /** The own subnets as last set (canonical CIDRs). */
  localSubnets(): readonly string[];
  /**
   * The routes as last set (control-plane view), sorted by dst. A route the forwarder failed to insert
   * (ENOMEM, ENOSPC) disappears from this list once the failure is seen, so a resync sets it again.
   */
  routes(): readonly ForwarderRoute[];
  /** Counter snapshot. After close: the last counters, `running: false`. */
  stats(): ForwarderStats;
  /**
   * Resolves when every command issued so far has been applied; rejects when the forwarder stopped,
   * and with E_NATIVE (details: code 'ENOMEM'|'ENOSPC', routes) when route inserts failed since the
   * last call (each failure is reported once).
   */
  settled(timeoutMs?: number): Promise<void>;
  /** Stops forwarding, joins the forwarder thread, closes the TUN fd and the socket. Idempotent. */
  close(): void;
  readonly closed: boolean;
}
