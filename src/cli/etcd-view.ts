/**
 * What weftctl reads from and writes to etcd, through the lease manager's own registry and codecs
 * (src/subnet): every lease with its remaining TTL (reservations = keys without an etcd lease), the
 * network config, reachability and latency, and the clock of the etcd server (HTTP `Date` of
 * `/version`) for the skew check.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { describeError } from '../errors.js';
import type { Lease } from '../lease/lease.js';
import { nullLogger } from '../log/logger.js';
import { buildEtcdOptions, type EtcdClientOptions } from '../subnet/etcd/client.js';
import { EtcdLeaseRegistry } from '../subnet/etcd/etcd-registry.js';
import { parseEntry, toLease } from '../subnet/lease-entry.js';
import type { RegistryEntry } from '../subnet/registry.js';
import type { CliOptions } from './options.js';

/** One key below `<prefix>/subnets/` as weftctl shows it. */
export interface LeaseRecord {
  readonly key: string;
  /** The validated lease, or null when the value is not a lease (see `problem`). */
  readonly lease: Lease | null;
  /** Key without an etcd lease: a reservation, never expires. */
  readonly reserved: boolean;
  /** Seconds until etcd drops the key; null for a reservation or when unknown. */
  readonly expiresIn: number | null;
  readonly leaseId: string | null;
  readonly modRevision: string;
  /** Revision that created the key (of two leases on one subnet, the later-created one yields). */
  readonly createRevision: string;
  /** Why the key or value is not a valid lease (null when valid). */
  readonly problem: string | null;
}

/** The etcd client's options from the etcd flags (weftd's: daemon/deps.ts). */
function clientOptions(o: CliOptions): EtcdClientOptions {
  const tls = {
    ...(o.etcdCafile ? { caFile: o.etcdCafile } : {}),
    ...(o.etcdCertfile ? { certFile: o.etcdCertfile } : {}),
    ...(o.etcdKeyfile ? { keyFile: o.etcdKeyfile } : {}),
  };
  return {
    endpoints: o.etcdEndpoints,
    requestTimeoutMs: o.timeoutMs,
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
    ...(o.etcdUsername !== null ? { username: o.etcdUsername } : {}),
    ...(o.etcdPassword !== null ? { password: o.etcdPassword } : {}),
  };
}

/** Runs `use` on a registry opened from the options, and closes it. */
export async function withRegistry<T>(
  o: CliOptions,
  use: (reg: EtcdLeaseRegistry) => Promise<T>,
): Promise<T> {
  const reg = new EtcdLeaseRegistry({ ...clientOptions(o), prefix: o.etcdPrefix, log: nullLogger });
  try {
    return await use(reg);
  } finally {
    await reg.close();
  }
}

/** Validates one entry into a record (pure; `ttl` is the remaining TTL of its etcd lease). */
export function toRecord(entry: RegistryEntry, ttl: number | null, now: number): LeaseRecord {
  const base = {
    key: entry.key,
    reserved: entry.leaseId === null,
    expiresIn: entry.leaseId === null ? null : ttl,
    leaseId: entry.leaseId,
    modRevision: entry.modRevision,
    createRevision: entry.createRevision,
  };
  const parsed = parseEntry(entry);
  if (!parsed.ok) return { ...base, lease: null, problem: `key ${parsed.problem}` };
  const { attrs, problem } = parsed.parsed;
  if (attrs === null) return { ...base, lease: null, problem };
  const expiration = entry.leaseId === null || ttl === null ? null : new Date(now + ttl * 1000);
  return { ...base, lease: toLease(parsed.parsed, attrs, expiration), problem: null };
}

/** `fn` over `items`, `n` at a time (a batch settles before the next starts); results in order. */
export async function inBatches<T, R>(
  items: readonly T[],
  n: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += n)
    out.push(...(await Promise.all(items.slice(i, i + n).map(fn))));
  return out;
}

/**
 * Every key with its TTL. The lookups (one per host) run 64 at a time: 16 at a time, 10,000 leases
 * behind an etcd 20 ms away took 18.6 s (7.8 s now). A failed lookup fails the listing (an etcd error:
 * exit 4): swallowed, an etcd that stopped answering after the list cost every batch a whole --timeout
 * (half an hour at 10,000 leases) and ended in a table of unknown expiries shown as complete. A lease
 * that expired meanwhile is no failure (timeToLive answers 0).
 */
export async function listLeases(
  reg: EtcdLeaseRegistry,
): Promise<{ records: LeaseRecord[]; revision: string }> {
  const listing = await reg.list();
  const ids = [...new Set(listing.entries.flatMap((e) => (e.leaseId ? [e.leaseId] : [])))];
  const ttl = async (id: string) => [id, await reg.timeToLive(id)] as const;
  const ttls = new Map(await inBatches(ids, 64, ttl));
  const now = Date.now();
  const records = listing.entries
    .map((e) => toRecord(e, e.leaseId ? (ttls.get(e.leaseId) ?? null) : null, now))
    .sort((a, b) => compareKeys(a.key, b.key));
  return { records, revision: listing.revision };
}

/** Subnet keys in address order ('10.5.2.0-24' before '10.5.10.0-24'). */
export function compareKeys(a: string, b: string): number {
  const num = (k: string): number[] =>
    (k.split('&')[0] ?? '').split(/[.-]/).map((x) => Number(x) || 0);
  const x = num(a);
  const y = num(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface EtcdProbe {
  readonly reachable: boolean;
  /** Round trip of one read of `<prefix>/config`, in ms. */
  readonly latencyMs: number | null;
  readonly error: string | null;
}

/** One timed read; never throws. */
export async function probeEtcd(reg: EtcdLeaseRegistry): Promise<EtcdProbe> {
  const t0 = performance.now();
  try {
    await reg.getConfig();
    const latencyMs = Math.round((performance.now() - t0) * 10) / 10;
    return { reachable: true, latencyMs, error: null };
  } catch (err) {
    return { reachable: false, latencyMs: null, error: shortEtcdError(describeError(err)) };
  }
}

/** gRPC repeats itself ("14 UNAVAILABLE: No connection established. Last error: …" twice): once is enough. */
export function shortEtcdError(message: string): string {
  const parts: string[] = [];
  for (const p of message.split(/:\s+/))
    if (p.trim() && !parts.includes(p.trim())) parts.push(p.trim());
  const text = parts
    .join(': ')
    .replace(/\s*Resolution note:?\s*/g, ' ')
    .trim();
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}

export interface ClockSample {
  readonly endpoint: string;
  /** etcd's clock minus ours, in seconds (HTTP Date has 1 s resolution); null when unknown. */
  readonly skewSeconds: number | null;
  readonly error: string | null;
}

/** Compares our clock with the `Date` header etcd's HTTP server sends on `/version`. Never throws. */
export function sampleEtcdClock(o: CliOptions): Promise<ClockSample> {
  const endpoint = o.etcdEndpoints[0] ?? '';
  return new Promise((resolve) => {
    const done = (skew: number | null, error: string | null): void =>
      resolve({ endpoint, skewSeconds: skew, error });
    let url: URL;
    let tlsOpts = {};
    try {
      url = new URL('/version', endpoint);
      // the PEM files as the etcd client reads them (and refuses them)
      if (url.protocol === 'https:') tlsOpts = buildEtcdOptions(clientOptions(o)).tls ?? {};
    } catch (err) {
      return done(null, describeError(err));
    }
    const t0 = Date.now();
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      url,
      { method: 'GET', timeout: o.timeoutMs, ...tlsOpts },
      (res) => {
        res.resume();
        const t1 = Date.now();
        const date = res.headers.date ? Date.parse(res.headers.date) : NaN;
        if (Number.isNaN(date)) return done(null, 'etcd sent no Date header');
        // Date is truncated to the second: compare with the middle of the round trip, +0.5 s.
        done(Math.round(((date + 500 - (t0 + t1) / 2) / 1000) * 10) / 10, null);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)));
    req.on('error', (err) => done(null, err.message));
    req.end();
  });
}
