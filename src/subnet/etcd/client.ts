/**
 * Building weft's etcd client from weft's options, and translating etcd's errors into WeftErrors
 * (docs/design.md C10: cast once, here). The client speaks etcd's JSON gRPC gateway over node:http(s)
 * (http-transport.ts, kv.ts, lease.ts, watch.ts; README "Dependency decisions" says why it replaced the
 * etcd3 package). Where weft differs from flannel (docs/flannel-compat.md §7, §18 item 11): a lone client
 * certificate or key is an error instead of a silent fallback to plain http, and a CA given alone is
 * honoured. TLS options with an `http://` endpoint are an error too.
 */
import { ConfigError, WeftError, type ErrorCode } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import {
  NotRegularFileError,
  readAtMostSync,
  withRegularFileSync,
} from '../../files/read-regular.js';
import { EtcdRequestError, GRPC, HttpTransport, type TransportOptions } from './http-transport.js';
import { Kv } from './kv.js';
import { Lease } from './lease.js';
import { secureContextOf, type PemNames, type PemSet } from './tls-files.js';
import { Watch, type WatchOptions } from './watch.js';

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
  /** Where a TLS file that cannot be used at run time is warned about. */
  readonly log?: Logger;
}

/** Longest TLS file read (a system CA bundle is ~200 KiB). */
const MAX_PEM_BYTES = 4 << 20;

/**
 * Reads a TLS file given by flag: opened non-blocking and only a regular file, at most MAX_PEM_BYTES,
 * so a FIFO, /dev/zero or a directory at the path fails at once with its name instead of hanging the
 * start (a blocked synchronous read also kept SIGTERM from being handled) or filling the memory.
 */
export function readPem(field: string, path: string): Buffer {
  const fail = (why: string, cause?: unknown): ConfigError =>
    new ConfigError(`etcd TLS ${field} ${path} cannot be read: ${why}`, {
      code: 'E_ETCD_TLS',
      ...(cause === undefined ? {} : { cause }),
    });
  try {
    return withRegularFileSync(path, (fd, st) => {
      if (st.size > MAX_PEM_BYTES) throw fail(`larger than ${MAX_PEM_BYTES} bytes`);
      return readAtMostSync(fd, st.size);
    });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw fail(
      err instanceof NotRegularFileError ? 'not a regular file' : (err as Error).message,
      err,
    );
  }
}

/** Validates the options and returns the transport's; throws ConfigError naming the problem. */
export function buildEtcdOptions(o: EtcdClientOptions): TransportOptions {
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
  let tls: Pick<TransportOptions, 'tls' | 'readTls' | 'tlsNames' | 'onTlsProblem'> = {};
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
    const read = (): PemSet => ({
      ...(caFile ? { ca: readPem('caFile', caFile) } : {}),
      ...(certFile ? { cert: readPem('certFile', certFile) } : {}),
      ...(keyFile ? { key: readPem('keyFile', keyFile) } : {}),
    });
    const names: PemNames = {
      ...(caFile ? { ca: `caFile ${caFile}` } : {}),
      ...(certFile ? { cert: `certFile ${certFile}` } : {}),
      ...(keyFile ? { key: `keyFile ${keyFile}` } : {}),
    };
    const pems = read();
    try {
      secureContextOf(pems, names);
    } catch (err) {
      throw new ConfigError((err as Error).message, { code: 'E_ETCD_TLS', cause: err });
    }
    tls = { tls: pems, readTls: read, tlsNames: names };
    const log = o.log;
    if (log)
      tls = {
        ...tls,
        onTlsProblem: (problem) => {
          if (problem === null) log.info('etcd TLS files usable again');
          else
            log.warn('etcd TLS files unusable: new connections keep the last valid ones', {
              problem,
              fix: 'put a valid PEM file back at that path (--etcd-cafile, --etcd-certfile, --etcd-keyfile); the next connection uses it, no restart needed',
            });
        },
      };
  }
  if ((o.username === undefined) !== (o.password === undefined))
    throw new ConfigError('etcd auth: username and password must be given together', {
      code: 'E_ETCD_AUTH',
    });
  return {
    endpoints: o.endpoints.map((e) => e.replace(/\/$/, '')),
    requestTimeoutMs: o.requestTimeoutMs,
    ...tls,
    ...(o.username !== undefined && o.password !== undefined
      ? { auth: { username: o.username, password: o.password } }
      : {}),
  };
}

/** etcd's KV, Lease and Watch services over one transport (one set of connections per member). */
export class EtcdClient {
  readonly transport: HttpTransport;
  readonly kv: Kv;
  readonly lease: Lease;
  private readonly watches = new Set<Watch>();

  constructor(o: TransportOptions) {
    this.transport = new HttpTransport(o);
    this.kv = new Kv(this.transport);
    this.lease = new Lease(this.transport);
  }

  /** Starts a watch (see watch.ts); close() of the client closes it too. */
  watch(o: WatchOptions): Watch {
    const w = new Watch(this.transport, o);
    this.watches.add(w);
    // The watch's own ends (a fatal error closes it too) and the caller's go through here.
    const close = w.close.bind(w);
    w.close = () => {
      this.watches.delete(w);
      close();
    };
    return w;
  }

  /** Stops every watch and request in flight; nothing of the client keeps the process alive after. */
  close(): void {
    for (const w of [...this.watches]) w.close();
    this.transport.close();
  }
}

export function createEtcdClient(o: EtcdClientOptions): EtcdClient {
  return new EtcdClient(buildEtcdOptions(o));
}

/** True for etcd's "requested lease not found" (the lease expired or was revoked). */
export function isLeaseNotFound(err: unknown): boolean {
  return err instanceof Error && /lease not found/i.test(err.message);
}

const AUTH_FAILED =
  /authentication failed|invalid auth token|permission denied|user name is empty|auth: /i;
/** What an auth error asks the operator to check (weftd's and weftctl's flags). */
const AUTH_FIX =
  'check --etcd-username/--etcd-password: an etcd user with read-write access to the --etcd-prefix keys, or none while etcd auth is disabled';

/** Casts anything the etcd client threw into a WeftError; `what` names the operation. */
export function translateEtcdError(what: string, err: unknown): WeftError {
  if (err instanceof WeftError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  const msg = e.message;
  const grpc = e instanceof EtcdRequestError ? e.grpcCode : undefined;
  if (/CommonName of client sending a request against gateway/i.test(msg))
    return new WeftError(
      'E_ETCD_TLS',
      `etcd ${what}: etcd refuses a client certificate with a CommonName on its HTTP gateway while etcd auth is enabled; use a client certificate without a CN (subjectAltName only) with --etcd-username/--etcd-password (docs/dependencies.md §4)`,
      { cause: e },
    );
  const overflow = grpc === GRPC.RESOURCE_EXHAUSTED && /watch answer too large/.test(msg);
  const code: ErrorCode =
    grpc === GRPC.UNAUTHENTICATED && !(e as EtcdRequestError).memberFailed
      ? 'E_ETCD_AUTH'
      : overflow || grpc === GRPC.OUT_OF_RANGE
        ? 'E_ETCD_COMPACTED'
        : AUTH_FAILED.test(msg)
          ? 'E_ETCD_AUTH'
          : isLeaseNotFound(e)
            ? 'E_ETCD_LEASE_NOT_FOUND'
            : /compacted|Watcher canceled/i.test(msg)
              ? 'E_ETCD_COMPACTED'
              : 'E_ETCD_UNAVAILABLE';
  const fix = code === 'E_ETCD_AUTH' ? ` (${AUTH_FIX})` : '';
  return new WeftError(code, `etcd ${what}: ${msg}${fix}`, {
    cause: e,
    ...(overflow ? { details: { overflow: true } } : {}),
    ...(code === 'E_ETCD_UNAVAILABLE' ? { retryable: true } : {}),
  });
}
