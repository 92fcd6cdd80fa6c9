/**
 * In-memory twin of NativeForwarder for unit tests of the UDP backend (docs/design.md C9). Same validation,
 * same route semantics (longest prefix match, peer, inner-source and inner-destination checks, the
 * route limit and its failure report), same counters; packets are simulated with `fromTun` /
 * `fromPeer` instead of moving through a kernel.
 */
import { EventEmitter } from 'node:events';
import { Ip4Net, tryParseIp4, tryParseIp6 } from '../../src/ip/index.js';
import { WeftError } from '../../src/errors.js';
import {
  RouteBook,
  ZERO_DROPS,
  closedError,
  fallbackOf,
  parseDst,
  parseLocal,
  parseOptions,
  parsePeer,
  routeFailureError,
  waitApplied,
  type ParsedDst,
  type RouteFailure,
} from '../../src/dataplane/forwarder-args.js';
import type {
  Forwarder,
  ForwarderDrops,
  ForwarderOffloads,
  ForwarderOptions,
  ForwarderRoute,
  ForwarderStats,
} from '../../src/dataplane/forwarder.js';

/** A simulated packet: inner addresses (IPv4 or IPv6 text), byte length, TTL. */
export interface SimPacket {
  readonly src: string;
  readonly dst: string;
  readonly bytes?: number;
  readonly ttl?: number;
}

export type TunVerdict =
  | { readonly kind: 'sent'; readonly peerIp: string; readonly port: number }
  | { readonly kind: 'dropped'; readonly reason: keyof ForwarderDrops };
export type PeerVerdict =
  | { readonly kind: 'delivered' }
  | { readonly kind: 'dropped'; readonly reason: keyof ForwarderDrops };

interface Entry {
  readonly dst: ParsedDst;
  readonly route: ForwarderRoute;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export interface MemoryForwarderOptions {
  /** Offloads to report (default: all on). */
  readonly offloads?: Partial<ForwarderOffloads>;
}

const EPHEMERAL_PORT = 40000;

export class MemoryForwarder extends EventEmitter implements Forwarder {
  readonly localPort: number;
  readonly fallback: readonly string[];
  private readonly book = new RouteBook();
  private readonly entries = new Map<string, Entry>();
  private readonly counters: Mutable<Omit<ForwarderStats, 'drops' | 'offloads'>>;
  private readonly drops: Mutable<ForwarderDrops> = { ...ZERO_DROPS };
  private readonly offloads: ForwarderOffloads;
  private isClosed = false;
  private fatal: WeftError | undefined;
  private local: readonly ParsedDst[];
  private failed: RouteFailure[] = [];

  private constructor(
    port: number,
    local: readonly ParsedDst[],
    private readonly maxRoutes: number,
    extra: MemoryForwarderOptions,
  ) {
    super();
    this.local = local;
    this.localPort = port === 0 ? EPHEMERAL_PORT : port;
    this.offloads = { vnetHdr: true, tso: true, udpGso: true, udpGro: true, ...extra.offloads };
    this.counters = {
      txPackets: 0,
      txBytes: 0,
      rxPackets: 0,
      rxBytes: 0,
      tunReads: 0,
      tunWrites: 0,
      tsoPackets: 0,
      gsoSends: 0,
      groReceives: 0,
      coalescedWrites: 0,
      icmpSent: 0,
      // the own subnets set at start: one reset plus one command per subnet, as the native loop counts
      commandsQueued: local.length + 1,
      commandsApplied: local.length + 1,
      commandsFailed: 0,
      peerSockets: 0,
      threads: 1,
      routes: 0,
      running: true,
    };
    this.fallback = Object.freeze(fallbackOf(this.stats()));
  }

  /** Same option validation as NativeForwarder.start; the fd is not touched. */
  static start(options: ForwarderOptions, extra: MemoryForwarderOptions = {}): MemoryForwarder {
    const o = parseOptions(options);
    return new MemoryForwarder(o.port, o.local, o.maxRoutes, extra);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  setRoute(dst: string, peerIp: string, port: number): void {
    const d = parseDst(dst);
    parsePeer(peerIp, port);
    this.open('set route');
    const route = { dst: d.cidr, peerIp, port };
    if (!this.entries.has(d.cidr) && this.entries.size >= this.maxRoutes) {
      // as the native table: the command is accepted, applying it fails (reported by settled())
      this.failed.push({ dst: d.cidr, code: 'ENOSPC' });
      this.counters.commandsFailed++;
      this.applied();
      return;
    }
    this.entries.set(d.cidr, { dst: d, route });
    this.book.set(d.cidr, peerIp, port);
    this.applied();
  }

  setLocalSubnets(cidrs: readonly string[]): void {
    const local = parseLocal(cidrs);
    this.open('set local subnets');
    this.local = local;
    this.counters.commandsQueued += local.length + 1;
    this.counters.commandsApplied += local.length + 1;
  }

  localSubnets(): readonly string[] {
    return this.local.map((d) => d.cidr);
  }

  deleteRoute(dst: string): boolean {
    const d = parseDst(dst);
    this.open('delete route');
    if (!this.book.get(d.cidr)) return false;
    this.entries.delete(d.cidr);
    this.book.delete(d.cidr);
    this.applied();
    return true;
  }

  routes(): readonly ForwarderRoute[] {
    return this.book.list();
  }

  stats(): ForwarderStats {
    return {
      ...this.counters,
      drops: { ...this.drops },
      offloads: { ...this.offloads },
      running: !this.isClosed && !this.fatal,
    };
  }

  async settled(timeoutMs = 2000): Promise<void> {
    await waitApplied(
      this.counters.commandsQueued,
      () => this.counters.commandsApplied,
      () => this.fatal ?? (this.isClosed ? closedError('settle') : undefined),
      timeoutMs,
    );
    const failed = this.failed;
    this.failed = [];
    if (failed.length > 0) throw routeFailureError(failed);
  }

  close(): void {
    this.isClosed = true;
  }

  /** Longest-prefix match of an address text, as the native table does it. */
  lookup(ip: string): ForwarderRoute | undefined {
    let best: Entry | undefined;
    for (const e of this.entries.values()) {
      if (!contains(e.dst, ip)) continue;
      if (!best || e.dst.prefixLen > best.dst.prefixLen) best = e;
    }
    return best?.route;
  }

  /** Simulates a packet read from the TUN. */
  fromTun(p: SimPacket): TunVerdict {
    this.open('forward');
    this.counters.tunReads++;
    const r = this.lookup(p.dst);
    if (!r) return this.drop('noRoute');
    if ((p.ttl ?? 64) <= 1) return this.drop('ttl');
    this.counters.txPackets++;
    this.counters.txBytes += p.bytes ?? 0;
    return { kind: 'sent', peerIp: r.peerIp, port: r.port };
  }

  /** Simulates a datagram from `peerIp` carrying packet `p`. */
  fromPeer(peerIp: string, p: SimPacket): PeerVerdict {
    this.open('receive');
    if (![...this.entries.values()].some((e) => e.route.peerIp === peerIp)) {
      return this.drop('unknownPeer');
    }
    if (this.lookup(p.src)?.peerIp !== peerIp) return this.drop('badInnerSource');
    if (!this.local.some((d) => contains(d, p.dst))) return this.drop('badInnerDest');
    if ((p.ttl ?? 64) <= 1) return this.drop('ttl');
    this.counters.rxPackets++;
    this.counters.rxBytes += p.bytes ?? 0;
    this.counters.tunWrites++;
    return { kind: 'delivered' };
  }

  /** Simulates the loop stopping on a fatal error (e.g. the TUN device vanished). */
  failWith(code: string, syscall: string): void {
    this.fatal = new WeftError('E_NATIVE', `udp forwarder stopped: ${syscall} ${code}`, {
      details: { code, syscall },
    });
    this.emit('error', this.fatal);
  }

  private drop(reason: keyof ForwarderDrops): { kind: 'dropped'; reason: keyof ForwarderDrops } {
    this.drops[reason]++;
    return { kind: 'dropped', reason };
  }

  private applied(): void {
    this.counters.commandsQueued++;
    this.counters.commandsApplied++;
    this.counters.routes = this.entries.size;
  }

  private open(op: string): void {
    if (this.isClosed) throw closedError(op);
    if (this.fatal) {
      throw new WeftError('E_NATIVE', `forwarder stopped: cannot ${op}`, {
        cause: this.fatal,
        details: { code: 'ESHUTDOWN', syscall: op },
      });
    }
  }
}

function contains(d: ParsedDst, ip: string): boolean {
  if (d.net instanceof Ip4Net) {
    const v = tryParseIp4(ip);
    return v !== null && d.net.containsIp(v);
  }
  const v = tryParseIp6(ip);
  return v !== null && d.net.containsIp(v);
}
