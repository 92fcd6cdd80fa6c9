/**
 * The Forwarder backed by the native loop thread (native/src/fwd_loop.c), loaded through
 * src/native/binding.ts only. Arguments are validated here, before anything reaches C.
 */
import { EventEmitter } from 'node:events';
import { WeftError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import {
  RouteBook,
  cidrOf,
  closedError,
  fallbackOf,
  localBytes,
  nativeError,
  parseDst,
  parseLocal,
  parseOptions,
  parsePeer,
  routeFailureError,
  waitApplied,
  type ParsedDst,
  type RouteFailure,
} from './forwarder-args.js';
import type { Forwarder, ForwarderOptions, ForwarderRoute, ForwarderStats } from './forwarder.js';
import { isTunDeleted } from './tun.js';
import {
  loadNative,
  type NativeForwarderHandle,
  type NativeForwarderStatKey,
} from '../native/binding.js';

type Flat = Readonly<Record<NativeForwarderStatKey, number>>;

function toStats(s: Flat): ForwarderStats {
  return {
    txPackets: s.txPackets,
    txBytes: s.txBytes,
    rxPackets: s.rxPackets,
    rxBytes: s.rxBytes,
    tunReads: s.tunReads,
    tunWrites: s.tunWrites,
    tsoPackets: s.tsoPackets,
    gsoSends: s.gsoSends,
    groReceives: s.groReceives,
    coalescedWrites: s.coalescedWrites,
    icmpSent: s.icmpSent,
    drops: {
      noRoute: s.dropNoRoute,
      unknownPeer: s.dropUnknownPeer,
      badInnerSource: s.dropBadInnerSource,
      badInnerDest: s.dropBadInnerDest,
      badChecksum: s.dropBadChecksum,
      congested: s.dropCongested,
      malformed: s.dropMalformed,
      ttl: s.dropTtl,
      unsupported: s.dropUnsupported,
      tunWrite: s.dropTunWrite,
      udpSend: s.dropUdpSend,
    },
    commandsQueued: s.commandsQueued,
    commandsApplied: s.commandsApplied,
    commandsFailed: s.commandsFailed,
    peerSockets: s.peerSockets,
    threads: s.threads,
    routes: s.routes,
    offloads: {
      vnetHdr: s.offVnetHdr === 1,
      tso: s.offTso === 1,
      udpGso: s.offUdpGso === 1,
      udpGro: s.offUdpGro === 1,
    },
    running: s.running === 1,
  };
}

export interface NativeForwarderDeps {
  /** Receives the one-time fallback warning and the fatal error. */
  readonly log?: Logger;
}

export class NativeForwarder extends EventEmitter implements Forwarder {
  readonly localPort: number;
  readonly fallback: readonly string[];
  private handle: NativeForwarderHandle | null;
  private readonly book = new RouteBook();
  private last: ForwarderStats;
  private fatal: WeftError | undefined;
  private local: readonly ParsedDst[] = [];
  /** Failed route inserts seen but not yet reported by settled(). */
  private failed: RouteFailure[] = [];

  private constructor(
    handle: NativeForwarderHandle,
    private readonly log: Logger | undefined,
  ) {
    super();
    this.handle = handle;
    this.localPort = handle.localPort();
    this.last = toStats(handle.stats());
    this.fallback = Object.freeze(fallbackOf(this.last));
    if (this.fallback.length > 0) {
      log?.warn('udp forwarder: offloads unavailable, using the slower fallback path', {
        missing: this.fallback,
      });
    }
  }

  /**
   * Starts the forwarder. Its UDP socket is created synchronously in the calling thread's network
   * namespace (so `inNetns(ns, () => NativeForwarder.start(...))` binds inside `ns`). On success the
   * forwarder owns `tunFd`. Throws TypeError for bad options, E_NATIVE (details: code, errno,
   * syscall) when the kernel refuses, E_NATIVE_UNAVAILABLE when the addon is not built.
   */
  static start(options: ForwarderOptions, deps: NativeForwarderDeps = {}): NativeForwarder {
    const o = parseOptions(options);
    const addon = loadNative();
    const ref: { fwd?: NativeForwarder } = {};
    const onFatal = (err: Error): void => {
      const self = ref.fwd;
      if (!self) return;
      const e = nativeError(err, 'udp'); // "udp: forwarder stopped: read EBADFD (…)"
      if (isTunDeleted(e)) e.message += ': its TUN device was deleted (ip link del)';
      self.fatal = e;
      // a listener decides (the udp backend recreates a deleted TUN, or ends weftd with the error)
      if (self.listenerCount('error') > 0) self.emit('error', e);
      else deps.log?.error('udp forwarder stopped', { err: e });
    };
    let handle: NativeForwarderHandle;
    try {
      handle = new addon.Forwarder(
        o.tunFd,
        o.bindIp,
        o.port,
        o.mtu,
        onFatal,
        o.maxRoutes,
        o.threads,
        o.nice,
      );
    } catch (err) {
      throw nativeError(err, `cannot start udp forwarder on port ${o.port}`);
    }
    ref.fwd = new NativeForwarder(handle, deps.log);
    try {
      ref.fwd.applyLocal(o.local);
    } catch (err) {
      ref.fwd.close();
      throw err;
    }
    return ref.fwd;
  }

  get closed(): boolean {
    return this.handle === null;
  }

  setRoute(dst: string, peerIp: string, port: number): void {
    const d = parseDst(dst);
    const p = parsePeer(peerIp, port);
    const h = this.open('set route');
    try {
      h.setRoute(d.family, d.addr, d.prefixLen, p.peer, port);
    } catch (err) {
      throw nativeError(err, `cannot set route ${d.cidr} via ${peerIp}:${port}`);
    }
    this.book.set(d.cidr, peerIp, port);
  }

  deleteRoute(dst: string): boolean {
    const d = parseDst(dst);
    const h = this.open('delete route');
    if (!this.book.get(d.cidr)) return false;
    try {
      h.deleteRoute(d.family, d.addr, d.prefixLen);
    } catch (err) {
      throw nativeError(err, `cannot delete route ${d.cidr}`);
    }
    return this.book.delete(d.cidr);
  }

  setLocalSubnets(cidrs: readonly string[]): void {
    this.applyLocal(parseLocal(cidrs));
  }

  localSubnets(): readonly string[] {
    return this.local.map((d) => d.cidr);
  }

  routes(): readonly ForwarderRoute[] {
    this.collectFailures();
    return this.book.list();
  }

  stats(): ForwarderStats {
    if (this.handle) this.last = toStats(this.handle.stats());
    return this.last;
  }

  async settled(timeoutMs = 2000): Promise<void> {
    const target = this.stats().commandsQueued;
    await waitApplied(
      target,
      () => this.stats().commandsApplied,
      () => this.fatal ?? (this.handle ? undefined : closedError('settle')),
      timeoutMs,
    );
    this.collectFailures();
    const failed = this.failed;
    this.failed = [];
    if (failed.length > 0) throw routeFailureError(failed);
  }

  close(): void {
    if (!this.handle) return;
    this.last = { ...toStats(this.handle.stats()), running: false };
    this.handle.close();
    this.handle = null;
  }

  private applyLocal(local: readonly ParsedDst[]): void {
    const h = this.open('set local subnets');
    try {
      h.setLocalSubnets(localBytes(local));
    } catch (err) {
      throw nativeError(err, `cannot set local subnets ${local.map((d) => d.cidr).join(', ')}`);
    }
    this.local = local;
  }

  /** Takes the loop's failed route inserts: out of the book (a resync sets them again), logged. */
  private collectFailures(): void {
    if (!this.handle) return;
    const got = this.handle.takeFailures();
    if (got.length === 0) return;
    const failures = got.map((f) => ({ dst: cidrOf(f.family, f.addr, f.prefixLen), code: f.code }));
    for (const f of failures) this.book.delete(f.dst);
    this.failed = [...this.failed, ...failures].slice(-1000);
    this.log?.warn('udp forwarder could not insert routes', { failures });
  }

  private open(op: string): NativeForwarderHandle {
    if (!this.handle) throw closedError(op);
    return this.handle;
  }
}
