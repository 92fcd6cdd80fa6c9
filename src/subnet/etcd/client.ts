/**
 * Building the etcd3 client from weft's options, and translating etcd3/gRPC errors into WeftErrors
 * (docs/design.md C10: cast once, here). Where weft differs from flannel (docs/flannel-compat.md §7, §18 item 11):
 * a lone client certificate or key is an error instead of a silent fallback to plain http, and a CA
 * given alone is honoured. TLS options with an `http://` endpoint are an error too.
 */
import { readFileSync } from 'node:fs';
import { Etcd3, isRecoverableError, type IOptions } from 'etcd3';
import { ConfigError, WeftError } from '../../errors.js';

export interface EtcdClientOptions {
  readonly endpoints: readonly string[];
  readonly tls?: {
    readonly caFile?: string;
    readonly certFile?: string;
    readonly keyFile?: string;
  };
  readonly username?: string;
  readonly password?: string;
  /** Deadline for every unary request. */
  readonly requestTimeoutMs: number;
}

type FaultHandling = NonNullable<IOptions['faultHandling']>;

/**
 * Watch reconnect backoff like flannel's (100 ms doubling, capped at 5 s) with ±20 % jitter, instead of
 * etcd3's default that took ~6.8 s to reconnect after an etcd restart (docs/dependencies.md §4).
 */
function watchBackoff(delay = 100): NonNullable<FaultHandling['watchBackoff']> {
  return {
    duration: delay * (0.8 + Math.random() * 0.4),
    next: () => watchBackoff(Math.min(delay * 2, 5000)),
  };
}

/**
 * etcd3's default policies retry three times and open a per-host circuit breaker for 5 s after three
 * failures, which turns a short etcd restart into 5 s of refusals. The lease manager retries with its
 * own backoff, so requests go straight through here.
 */
const passThrough = {
  execute: async <T>(fn: (ctx: { signal: AbortSignal; attempt: number }) => PromiseLike<T> | T) =>
    fn({ signal: new AbortController().signal, attempt: 0 }),
} as unknown as NonNullable<FaultHandling['global']>;

/** How long an endpoint is skipped after a failed call when other endpoints are configured. */
export const ENDPOINT_SKIP_MS = 3000;

/**
 * The per-endpoint policy with several endpoints (an etcd cluster): an endpoint whose call failed with
 * a transport error, a timeout or "no leader" is skipped for ENDPOINT_SKIP_MS, so the next call — and
 * the watch's reconnect — goes to another member instead of a random one that may be the dead or
 * partitioned member again (etcd3 picks a random endpoint per call and tries the next one only when
 * this policy refuses without calling through). etcd3's own breaker opened after three failures for
 * 5 s; one failure is enough here, and nothing is ever refused with a single endpoint.
 */
function skipAfterFailure(): NonNullable<FaultHandling['global']> {
  let skipUntil = 0;
  return {
    execute: async <T>(
      fn: (ctx: { signal: AbortSignal; attempt: number }) => PromiseLike<T> | T,
    ): Promise<T> => {
      if (Date.now() < skipUntil)
        throw new Error('etcd endpoint skipped: its last call failed (trying another member)');
      try {
        return await fn({ signal: new AbortController().signal, attempt: 0 });
      } catch (err) {
        if (err instanceof Error && isRecoverableError(err))
          skipUntil = Date.now() + ENDPOINT_SKIP_MS;
        throw err;
      }
    },
  } as unknown as NonNullable<FaultHandling['global']>;
}

/**
 * gRPC keepalive on every connection: a member that vanished without closing its TCP connections (a
 * partition, a link down) is detected in at most time + timeout, and its streams (the watch, a
 * keepalive) fail over instead of waiting forever. etcd refuses pings more often than every 5 s
 * (--grpc-keepalive-min-time), hence 6 s.
 */
export const GRPC_KEEPALIVE = {
  'grpc.keepalive_time_ms': 6000,
  'grpc.keepalive_timeout_ms': 3000,
} as const;

function readPem(field: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`etcd TLS ${field} ${path} cannot be read: ${(err as Error).message}`, {
      code: 'E_ETCD_TLS',
      cause: err,
    });
  }
}

/** Validates the options and returns etcd3's options; throws ConfigError naming the problem. */
export function buildEtcdOptions(o: EtcdClientOptions): IOptions {
  if (o.endpoints.length === 0)
    throw new ConfigError('etcd endpoints: none given (e.g. http://127.0.0.1:2379)', {
      code: 'E_OPTION_INVALID',
    });
  for (const e of o.endpoints)
    if (!/^https?:\/\/[^/\s]+\/?$/.test(e))
      throw new ConfigError(
        `etcd endpoint ${JSON.stringify(e)} is invalid: use http://host:port or https://host:port`,
        { code: 'E_OPTION_INVALID' },
      );
  const secure = o.endpoints.filter((e) => e.startsWith('https://')).length;
  if (secure !== 0 && secure !== o.endpoints.length)
    throw new ConfigError(
      `etcd endpoints mix http and https (${o.endpoints.join(',')}): use one scheme`,
      { code: 'E_OPTION_INVALID' },
    );
  const options: IOptions = {
    hosts: o.endpoints.map((e) => e.replace(/\/$/, '')),
    dialTimeout: o.requestTimeoutMs,
    defaultCallOptions: (ctx) =>
      ctx.isStream ? {} : { deadline: new Date(Date.now() + o.requestTimeoutMs) },
    faultHandling: {
      global: passThrough,
      host: () => (o.endpoints.length > 1 ? skipAfterFailure() : passThrough),
      watchBackoff: watchBackoff(),
    },
    grpcOptions: { ...GRPC_KEEPALIVE },
  };
  const { caFile, certFile, keyFile } = o.tls ?? {};
  if ((certFile && !keyFile) || (!certFile && keyFile))
    throw new ConfigError(
      `etcd TLS: ${certFile ? `certFile ${certFile} given without keyFile` : `keyFile ${keyFile} given without certFile`}; give both (or neither) — weft never falls back to plain http`,
      { code: 'E_ETCD_TLS' },
    );
  if (caFile || certFile) {
    if (secure === 0)
      throw new ConfigError(
        `etcd TLS files are set but the endpoints are http:// (${o.endpoints.join(',')}): use https:// endpoints`,
        { code: 'E_ETCD_TLS' },
      );
    options.credentials = {
      rootCertificate: caFile ? readPem('caFile', caFile) : (null as unknown as Buffer),
      ...(certFile ? { certChain: readPem('certFile', certFile) } : {}),
      ...(keyFile ? { privateKey: readPem('keyFile', keyFile) } : {}),
    };
  }
  if ((o.username === undefined) !== (o.password === undefined))
    throw new ConfigError('etcd auth: username and password must be given together', {
      code: 'E_ETCD_AUTH',
    });
  if (o.username !== undefined && o.password !== undefined)
    options.auth = { username: o.username, password: o.password };
  return options;
}

/**
 * etcd's "require leader" request metadata: a member that has lost its leader (partitioned from the
 * majority, or the cluster lost quorum) refuses requests at once and cancels the watches on it, rather
 * than serving stale reads or holding a watch that never delivers, so clients move to a member that
 * still has one. etcd3 has no option for it: its authenticator supplies every call's metadata.
 */
function requireLeader(client: Etcd3): void {
  const auth = (
    client as unknown as {
      pool?: {
        authenticator?: { getMetadata: () => Promise<{ set(k: string, v: string): void }> };
      };
    }
  ).pool?.authenticator;
  if (!auth || typeof auth.getMetadata !== 'function') return;
  const original = auth.getMetadata.bind(auth);
  auth.getMetadata = async () => {
    const md = await original();
    md.set('hasleader', 'true');
    return md;
  };
}

export function createEtcdClient(o: EtcdClientOptions): Etcd3 {
  const client = new Etcd3(buildEtcdOptions(o));
  requireLeader(client);
  return client;
}

/** True for etcd3's "requested lease not found" (the lease expired or was revoked). */
export function isLeaseNotFound(err: unknown): boolean {
  return err instanceof Error && /lease not found/i.test(err.message);
}

/** Casts anything etcd3 or gRPC threw into a WeftError; `what` names the operation. */
export function translateEtcdError(what: string, err: unknown): WeftError {
  if (err instanceof WeftError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  const msg = e.message;
  if (
    /authentication failed|invalid auth token|permission denied|user name is empty|auth: /i.test(
      msg,
    )
  )
    return new WeftError('E_ETCD_AUTH', `etcd ${what}: ${msg}`, { cause: e });
  if (isLeaseNotFound(e))
    return new WeftError('E_ETCD_LEASE_NOT_FOUND', `etcd ${what}: ${msg}`, { cause: e });
  if (/compacted|Watcher canceled/i.test(msg))
    return new WeftError('E_ETCD_COMPACTED', `etcd ${what}: ${msg}`, { cause: e });
  return new WeftError('E_ETCD_UNAVAILABLE', `etcd ${what}: ${msg}`, {
    cause: e,
    retryable: true,
  });
}
