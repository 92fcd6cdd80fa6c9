/**
 * Which underlay addresses may send encapsulated traffic to this host: the public addresses of the
 * leases weftd watches, put through the same peer checks the backends use before they program a peer
 * (backend/peer-check.ts). Fed from the daemon's lease event stream (a tap on `watchLeases`, see
 * `tapLeaseEvents`), so it sees exactly the batches the backend sees; the firewall turns the result
 * into the nft sets `weft_peers4` / `weft_peers6`.
 */
import type { Lease, LeaseEvent } from '../lease/lease.js';
import type { Uplink } from '../backend/backend.js';
import { FAMILIES } from '../backend/family.js';
import {
  DEFAULT_REMOVAL_GRACE_MS,
  RELIST_REMOVAL_GRACE_MS,
  relistGraceMs,
} from '../backend/peer-loop.js';
import { peerAddressProblem, peerSubnetProblem } from '../backend/peer-check.js';
import type { NetworkConfig, SubnetManager } from '../subnet/manager.js';
import type { PeerElements } from '../firewall/rules.js';

/** What a lease is checked against. */
export interface AllowlistScope {
  readonly config: NetworkConfig;
  readonly uplink: Uplink;
  /** This host's own lease (its subnets must not be overlapped by a peer's). */
  readonly own: Lease;
}

/** Whether `lease` belongs to the backend of `type` (flannel's UDP backend writes no type). */
function sameBackend(lease: Lease, type: string): boolean {
  const t = lease.attrs.backendType.toLowerCase();
  return t === type || (type === 'udp' && t === '');
}

/** The public addresses of `lease` that may send encapsulated traffic (pure). */
export function peerAddresses(lease: Lease, scope: AllowlistScope): PeerElements {
  const out = { v4: [] as string[], v6: [] as string[] };
  if (!sameBackend(lease, scope.config.backend.type.toLowerCase())) return out;
  for (const fam of FAMILIES) {
    const network = fam.network(scope.config);
    const subnet = fam.subnet(lease);
    const ownSubnet = fam.subnet(scope.own);
    const ip = fam.publicIp(lease);
    if (!network || !subnet || !ownSubnet || !ip) continue;
    const problem =
      peerSubnetProblem(subnet, {
        network,
        subnetLen: fam.subnetLen(scope.config),
        ownSubnet,
      }) ?? peerAddressProblem(ip, [fam.ifaceAddr(scope.uplink), fam.uplinkPublicIp(scope.uplink)]);
    if (problem === null) (fam.family === 4 ? out.v4 : out.v6).push(ip);
  }
  return out;
}

/**
 * The leases seen so far and whether a complete snapshot was among them. A removed lease stays allowed
 * for the peer loop's removal grace (src/backend/peer-loop.ts DEFAULT_REMOVAL_GRACE_MS): a lease deleted
 * and re-acquired at once must cost no packet here either, while a peer that really left is still shut
 * out well within 2 s (`nextExpiry` tells the daemon when to look again). A lease only missing from a
 * re-list (etcd reset) stays for the peer loop's longer RELIST_REMOVAL_GRACE_MS.
 */
export class PeerAllowlist {
  private readonly leases = new Map<string, Lease>();
  private readonly leaving = new Map<string, { lease: Lease; until: number }>();
  private complete = false;
  private readonly graceMs: number;
  private readonly relistGraceMs: number;
  /** Elapsed-time clock of the graces (monotonic: a wall clock stepped back must not stretch them). */
  private readonly now: () => number;
  /** The wall clock, only to compare with lease expirations. */
  private readonly wallNow: () => number;

  constructor(
    opts: {
      graceMs?: number;
      relistGraceMs?: number;
      now?: () => number;
      wallNow?: () => number;
    } = {},
  ) {
    this.graceMs = opts.graceMs ?? DEFAULT_REMOVAL_GRACE_MS;
    this.relistGraceMs = opts.relistGraceMs ?? RELIST_REMOVAL_GRACE_MS;
    this.now = opts.now ?? (() => performance.now());
    this.wallNow = opts.wallNow ?? Date.now;
  }

  /** Applies one batch of lease events (a snapshot replaces everything). */
  observe(batch: readonly LeaseEvent[]): void {
    // A lease only missing from a re-list (etcd reset) stays as long as the peer loop keeps it.
    const leave = (l: Lease, relisted = false): void => {
      this.leases.delete(l.key);
      const now = this.now();
      const grace = relisted
        ? relistGraceMs(l, this.graceMs, this.relistGraceMs, this.wallNow())
        : this.graceMs;
      if (grace > 0) this.leaving.set(l.key, { lease: l, until: now + grace });
    };
    for (const ev of batch) {
      if (ev.kind === 'snapshot') {
        const keep = new Set(ev.leases.map((l) => l.key));
        for (const l of [...this.leases.values()]) if (!keep.has(l.key)) leave(l);
        this.leases.clear();
        for (const l of ev.leases) {
          this.leases.set(l.key, l);
          this.leaving.delete(l.key);
        }
        this.complete = true;
      } else if (ev.kind === 'removed') leave(ev.lease, ev.relisted === true);
      else {
        this.leases.set(ev.lease.key, ev.lease);
        this.leaving.delete(ev.lease.key);
      }
    }
  }

  /** When the next removed lease's grace ends (on the `now` clock), or null when none is pending. */
  nextExpiry(): number | null {
    let next: number | null = null;
    for (const { until } of this.leaving.values())
      next = next === null ? until : Math.min(next, until);
    return next;
  }

  /** Milliseconds until the next removed lease's grace ends, or null when none is pending. */
  nextExpiryInMs(): number | null {
    const next = this.nextExpiry();
    return next === null ? null : Math.max(0, next - this.now());
  }

  /** The addresses of every accepted lease; `complete` once a snapshot was seen. */
  addresses(scope: AllowlistScope): PeerElements & { complete: boolean } {
    const v4 = new Set<string>();
    const v6 = new Set<string>();
    const now = this.now();
    for (const [key, { until }] of this.leaving) if (until <= now) this.leaving.delete(key);
    const current = [...this.leases.values(), ...[...this.leaving.values()].map((x) => x.lease)];
    for (const l of current) {
      const a = peerAddresses(l, scope);
      for (const x of a.v4) v4.add(x);
      for (const x of a.v6) v6.add(x);
    }
    return { v4: [...v4].sort(), v6: [...v6].sort(), complete: this.complete };
  }
}

/**
 * `subnets` with a tap on `watchLeases`: every batch goes to `onBatch` before the backend sees it (a
 * new peer is allowed in before its FDB entry exists). Everything else is passed through.
 */
export function tapLeaseEvents(
  subnets: SubnetManager,
  /** May return a promise: the backend sees the batch once it settles. */
  onBatch: (batch: readonly LeaseEvent[]) => Promise<void> | void,
): SubnetManager {
  return {
    get name() {
      return subnets.name;
    },
    getNetworkConfig: (signal) => subnets.getNetworkConfig(signal),
    acquireLease: (attrs, options, signal) => subnets.acquireLease(attrs, options, signal),
    keepLease: (lease, signal, onRenewed) => subnets.keepLease(lease, signal, onRenewed),
    async *watchLeases(ownLease, signal) {
      for await (const batch of subnets.watchLeases(ownLease, signal)) {
        await onBatch(batch);
        yield batch;
      }
    },
    close: () => subnets.close(),
  };
}
