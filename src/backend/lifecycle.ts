/**
 * The parts of `registerNetwork` / `run` the backends share: the netlink façade a backend uses (injected,
 * or its own, which it closes), the families a network config enables, this host's subnet per family,
 * the `run` / `reconcileNow` pair that drives a PeerLoop, the link events that ask it for a reconcile,
 * and the keeper of the TUN backends' native engines (`TunKeeper`).
 */
import { ConfigError, WeftError } from '../errors.js';
import { isTunDeleted } from '../dataplane/tun.js';
import type { Lease } from '../lease/lease.js';
import type { Uplink } from './backend.js';
import type { Logger } from '../log/logger.js';
import { createNetlinkOps, type LinkEvent, type NetlinkOps } from '../netlink/index.js';
import type { NetworkConfig } from '../subnet/manager.js';
import { FAMILIES, type FamilyDescriptor } from './family.js';
import { PeerLoop, type PeerLoopObserver, type PeerLoopOptions } from './peer-loop.js';
import type { PeerEntry } from './peer-plan.js';

/** The options every backend takes for its façade and its peer loop. */
export interface BackendRuntimeOptions {
  /** Use this façade (tests, or a daemon sharing one); default: a new one, closed when `run` ends. */
  readonly netlink?: NetlinkOps;
  /** Create the façade's sockets in this netns (tests driving a simulated host). */
  readonly netns?: string;
  /** Full reconcile period (default 60 s). */
  readonly resyncMs?: number;
  /** How long a removed peer's entries wait for the same lease to come back (default 500 ms). */
  readonly removalGraceMs?: number;
  readonly observer?: PeerLoopObserver;
}

export interface BackendNetlink {
  readonly ops: NetlinkOps;
  /** Closes the façade when the backend created it (a no-op for an injected one). */
  release(): void;
}

export function backendNetlink(options: BackendRuntimeOptions, log: Logger): BackendNetlink {
  if (options.netlink) return { ops: options.netlink, release: () => {} };
  const ops = createNetlinkOps({ ...(options.netns ? { netns: options.netns } : {}), log });
  return { ops, release: () => ops.close() };
}

/** The families the network config enables; ConfigError when neither is. `backend` names the error. */
export function enabledFamilies(config: NetworkConfig, backend: string): FamilyDescriptor[] {
  const families = FAMILIES.filter((f) => f.network(config) !== null);
  if (families.length === 0)
    throw new ConfigError(`${backend}: the network config enables neither IPv4 nor IPv6`);
  return families;
}

/** This host's subnet of `fam` in its own lease; ConfigError E_LEASE_INVALID when the lease has none. */
export function ownSubnet(fam: FamilyDescriptor, lease: Lease, backend: string): string {
  const own = fam.subnet(lease);
  if (!own) {
    throw new ConfigError(`${backend}: the lease ${lease.key} has no ${fam.label} subnet`, {
      code: 'E_LEASE_INVALID',
    });
  }
  return own;
}

export interface PeerLoopRunner {
  /** Runs the peer loop until `signal` aborts, then releases the façade. */
  run(signal: AbortSignal): Promise<void>;
  /** Runs a full reconcile now (queued behind any work in progress); only while `run` is active. */
  reconcileNow(): Promise<void>;
}

/** `run` and `reconcileNow` of a network programmed by a PeerLoop (`resyncMs`, `removalGraceMs` and
 *  `observer` from `runtime`); `release` runs when `run` ends (closes the façade, the forwarder, …). */
export function peerLoopRunner<E extends PeerEntry>(
  loopOptions: Omit<PeerLoopOptions<E>, 'resyncMs' | 'removalGraceMs' | 'observer'>,
  runtime: BackendRuntimeOptions,
  release: () => void,
): PeerLoopRunner {
  let loop: PeerLoop<E> | null = null;
  return {
    reconcileNow: () => (loop ? loop.requestReconcile('requested') : Promise.resolve()),
    async run(signal: AbortSignal): Promise<void> {
      loop = new PeerLoop({
        ...loopOptions,
        ...(runtime.resyncMs !== undefined ? { resyncMs: runtime.resyncMs } : {}),
        ...(runtime.removalGraceMs !== undefined ? { removalGraceMs: runtime.removalGraceMs } : {}),
        ...(runtime.observer ? { observer: runtime.observer } : {}),
      });
      try {
        await loop.run(signal);
      } finally {
        loop = null;
        release();
      }
    },
  };
}

/** Peer-loop triggers from link events: a reconcile whenever `wanted` says the event concerns us. */
export function linkTriggers(
  ops: NetlinkOps,
  wanted: (e: LinkEvent) => boolean,
): NonNullable<PeerLoopOptions<PeerEntry>['triggers']> {
  return (request) =>
    ops.subscribeLinks((e) => {
      if (wanted(e)) request(`link event ${e.kind}`);
    });
}

/**
 * For backends with routes on the uplink (host-gw, vxlan DirectRouting): true when the uplink comes
 * back up. The kernel deletes every IPv4 route through an interface set down (`ip link set eth0 down`,
 * a networkd or ifupdown restart) and re-adds only its own prefix routes on up, so without a reconcile
 * then, peers stay unreachable until the next `--resync-period`.
 */
export function uplinkCameUp(uplink: Pick<Uplink, 'index'>): (e: LinkEvent) => boolean {
  let up = true;
  let at = uplink.index;
  return (e) => {
    if (uplink.index !== at) {
      // re-created (uplinkRecreated): its first event up counts as coming up
      at = uplink.index;
      up = false;
    }
    if (e.kind !== 'changed' || e.link.index !== uplink.index) return false;
    const cameUp = e.link.up && !up;
    up = e.link.up;
    return cameUp;
  };
}

/**
 * For backends bound to the uplink by ifindex (host-gw and DirectRouting routes, the VXLAN device's
 * `dev`): true when the uplink was deleted and created again under its name (a NIC driver reload, a
 * bond or bridge rebuilt), i.e. a link with its name and a new ifindex appears. The kernel dropped
 * what was bound to the old one (routes; VXLAN devices on it are deleted with it), so this moves
 * `uplink.index` to the new interface and asks for a reconcile, which re-creates the VXLAN device (same
 * MAC) and the routes on it. The address is the one weftd started with (a different one is
 * watchUplinkAddress's case in daemon/run.ts).
 * Also true when that address comes back on the uplink (usable: not tentative or dadfailed) after it
 * was missing: a re-created uplink addressed only after it came up, or an address flushed and added
 * again. Routes via a peer need the address's prefix route, so the reconcile at the re-create failed
 * for them; refreshes of an address that stayed (router advertisements) do not count.
 */
export function uplinkRecreated(uplink: Uplink, log: Logger): (e: LinkEvent) => boolean {
  const own = [uplink.ifaceAddr, uplink.ifaceAddr6].filter((a): a is string => a !== null);
  const missing = new Set<string>();
  return (e) => {
    if (e.kind === 'resync' || e.kind === 'removed') return false;
    let moved = false;
    if (e.link.name === uplink.name && e.link.index !== uplink.index) {
      log.warn(
        `uplink ${uplink.name} was re-created (ifindex ${uplink.index} → ${e.link.index}): ` +
          'moving routes and devices onto it',
        { uplink: uplink.name, index: e.link.index, was: uplink.index },
      );
      uplink.index = e.link.index;
      for (const a of own) missing.add(a);
      moved = true;
    }
    if (e.kind !== 'address' || e.addr.index !== uplink.index) return moved;
    const ip = e.addr.cidr.slice(0, e.addr.cidr.indexOf('/'));
    if (!own.includes(ip)) return moved;
    const usable = !e.addr.flags?.some((f) => f === 'tentative' || f === 'dadfailed');
    if (!e.added || !usable) {
      missing.add(ip);
      return moved;
    }
    return missing.delete(ip) || moved;
  };
}

/**
 * For TUN backends (udp, wireguard): true when one of `names` went down. Down, the kernel deleted the
 * cluster route through it; the reconcile's device repair sets it up and routes it again at once
 * instead of at the next `--resync-period` (vxlan's device trigger does the same for its device).
 */
export function tunWentDown(names: readonly string[]): (e: LinkEvent) => boolean {
  return (e) =>
    e.kind === 'resync' || (e.kind === 'changed' && !e.link.up && names.includes(e.link.name));
}

/** A native engine on a TUN (the UDP forwarder, a WireGuard device). */
export interface TunEngine {
  readonly localPort: number;
  on(event: 'error', listener: (err: unknown) => void): unknown;
  close(): void;
}

/** One TUN of a network and the engine on it now (replaced when the TUN was deleted). */
export interface TunSlot<T extends TunEngine> {
  readonly name: string;
  engine: T;
}

/** How a TUN keeper repairs a deleted TUN, once the network's sink and peer loop exist. */
export interface TunRepair<T extends TunEngine, S extends TunSlot<T>> {
  /** The warning when a TUN was found deleted (ip link del); the log line names it (`device`). */
  readonly deleted: string;
  /** Starts the engine anew on a new TUN (same port, same key); throws when it cannot. */
  readonly restart: (slot: S) => T;
  /** Hands the new engine to the sink (its table is empty). */
  readonly replaced: (slot: S) => void;
  /** Sets the TUN's address and routes (configureTun). */
  readonly configure: (slot: S) => Promise<unknown>;
  /** The network's full reconcile, which programs every peer on the new engine. */
  readonly reconcileNow: () => Promise<void>;
}

/**
 * Keeps the native engines of a TUN backend (udp, wireguard). An engine error is fatal, never an
 * unhandled 'error' event: `run` rethrows it. Only a TUN deleted under its engine (`ip link del weft0`,
 * isTunDeleted) is repaired in place once the network is set up (`repairWith`): the engine is started
 * anew on a new TUN (same port and key), the sink programs onto it, its address and routes are set and
 * a full reconcile re-adds every peer, so traffic flows again within a second; other hosts are not
 * touched. When the restart fails, weftd exits with the cause (a restart creates the device).
 */
export class TunKeeper<T extends TunEngine, S extends TunSlot<T>> {
  private repairs: TunRepair<T, S> | null = null;
  private readonly slots: S[] = [];
  private released = false;
  private fatal: unknown;
  /** Aborts the `run`s in progress. */
  private readonly stops = new Set<() => void>();

  constructor(
    private readonly backend: string,
    private readonly log: Logger,
  ) {}

  /** Watches the engine now in `slot`: a fatal error ends `run`, a deleted TUN is repaired. */
  watch(slot: S): S {
    const engine = slot.engine;
    if (!this.slots.includes(slot)) this.slots.push(slot);
    engine.on('error', (err: unknown) => {
      if (slot.engine !== engine || this.released) return;
      if (isTunDeleted(err)) setImmediate(() => void this.repair(slot, err));
      else this.die(err);
    });
    return slot;
  }

  /** Repairs deleted TUNs from now on (before, a deleted TUN is fatal like any engine error). */
  repairWith(repairs: TunRepair<T, S>): void {
    this.repairs = repairs;
  }

  /** Closes every watched engine (joins its thread) and repairs nothing from now on. */
  release(): void {
    this.released = true;
    for (const s of this.slots) s.engine.close();
  }

  /**
   * `run` of the network: `loop` (the peer loop) runs until `signal` aborts or an engine dies, and the
   * engine's error (also one reported before) explains the end.
   */
  async run(loop: (signal: AbortSignal) => Promise<void>, signal: AbortSignal): Promise<void> {
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    this.stops.add(onAbort);
    if (this.fatal !== undefined) stop.abort();
    try {
      await loop(stop.signal);
    } catch (err) {
      throw this.fatal ?? err;
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.stops.delete(onAbort);
    }
    if (this.fatal !== undefined) throw this.fatal;
  }

  private die(err: unknown): void {
    this.fatal ??= err;
    for (const stop of this.stops) stop();
  }

  private async repair(slot: S, cause: unknown): Promise<void> {
    const { backend, log, repairs: o } = this;
    if (this.released || this.fatal !== undefined) return;
    if (!o) return this.die(cause); // deleted while the network is being set up: fatal
    const device = slot.name;
    log.warn(o.deleted, { device, err: (cause as Error).message });
    slot.engine.close();
    try {
      slot.engine = o.restart(slot);
    } catch (err) {
      this.die(
        new WeftError(
          'E_NATIVE',
          `${backend}: the TUN ${device} was deleted (ip link del) and cannot be recreated ` +
            `(weftd exits; its restart sets the device up again): ${(err as Error).message}`,
          { cause: err },
        ),
      );
      return;
    }
    this.watch(slot);
    o.replaced(slot);
    try {
      await o.configure(slot);
    } catch (err) {
      // the peer loop's device repair (ensureReady) retries at the reconcile below
      log.warn(`${backend} device recreated, address/route not set yet`, {
        device,
        err: (err as Error).message,
      });
    }
    await o.reconcileNow();
    log.info(`${backend} device recreated`, { device, port: slot.engine.localPort });
  }
}
