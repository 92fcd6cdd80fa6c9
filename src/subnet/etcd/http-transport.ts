/**
 * HTTP(S) requests to etcd's JSON gRPC gateway (`POST /v3/…` on the client port; docs/dependencies.md
 * §4): endpoint choice with failover, per-call deadlines and AbortSignal, TLS, the auth token, and the
 * require-leader header. Errors leave here as EtcdRequestError (etcd's message and gRPC code, or the
 * transport failure); client.ts casts them into WeftErrors.
 *
 * - Endpoints: calls stay on one member while it answers (a random one at start, so hosts spread over
 *   the cluster). With several endpoints a member whose call failed by transport, timeout or "no leader"
 *   is skipped for ENDPOINT_SKIP_MS; a call that was refused before etcd could apply it (connection
 *   refused, no leader) moves on to the next member at once, within its deadline. A read (READS) also
 *   moves on after any failure of its member ("leader changed" during an election too), and when its
 *   member has not begun to answer within its share of the deadline (the deadline over the members not
 *   tried yet): a frozen member (SIGSTOPped, cut off behind a firewall that still accepts connections)
 *   answers nothing, and the read would otherwise spend its whole deadline there.
 * - Require leader: every request carries `Grpc-Metadata-Hasleader: true`, which the gateway hands to
 *   etcd as the gRPC metadata `hasleader=true`: a member without a leader refuses at once (and cancels
 *   watches) instead of serving stale reads or a watch that never delivers.
 * - Auth: `POST /v3/auth/authenticate` gives a token sent as `Authorization`; when etcd says the token is
 *   invalid (it expired: simple tokens live `--auth-token-ttl`, 300 s by default) the call
 *   re-authenticates once and is retried. An etcd whose auth is disabled refuses to authenticate
 *   ("authentication is not enabled"): calls then go without a token, as etcd's Go client (and so
 *   flannel) does, and authenticate again once etcd asks for a user ("user name is empty": auth was
 *   enabled meanwhile).
 */
import http from 'node:http';
import type https from 'node:https';
import { AbortedError } from '../../errors.js';
import { gatewayError, NdjsonSplitter, parseJson } from './json-codec.js';
import { TlsFiles, type PemNames, type PemSet } from './tls-files.js';

/** How long an endpoint is skipped after a failed call when other endpoints are configured. */
export const ENDPOINT_SKIP_MS = 3000;
/** A unary answer larger than this fails (listing then asks for smaller pages). */
export const MAX_RESPONSE_BYTES = 64 << 20;

export interface TransportOptions {
  /** `http(s)://host:port`, validated (client.ts), all with one scheme. */
  readonly endpoints: readonly string[];
  readonly tls?: PemSet;
  /** Reads the TLS files again (tls-files.ts): each new connection then uses them as they are now. */
  readonly readTls?: () => PemSet;
  /** How errors name the TLS files. */
  readonly tlsNames?: PemNames;
  /** Told once per problem when the files on disk cannot be used (null: usable again). */
  readonly onTlsProblem?: (problem: string | null) => void;
  readonly auth?: { readonly username: string; readonly password: string };
  /** Deadline for every unary request (all its attempts together). */
  readonly requestTimeoutMs: number;
}

/** gRPC status codes the gateway reports (google.golang.org/grpc/codes). */
export const GRPC = {
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  OUT_OF_RANGE: 11,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** A failed etcd request: etcd's own message (and gRPC code), or what went wrong on the way. */
export class EtcdRequestError extends Error {
  /** etcd's gRPC code, or UNAVAILABLE/DEADLINE_EXCEEDED for transport failures. */
  readonly grpcCode: number;
  /** The member is unusable for now (transport failure, timeout, no leader): skip it. */
  readonly memberFailed: boolean;
  /** etcd certainly did not apply the request: it may be sent to another member at once. */
  readonly notApplied: boolean;
  constructor(
    message: string,
    o: { grpcCode: number; memberFailed?: boolean; notApplied?: boolean; cause?: unknown },
  ) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = 'EtcdRequestError';
    this.grpcCode = o.grpcCode;
    this.memberFailed = o.memberFailed ?? false;
    this.notApplied = o.notApplied ?? false;
  }
}

/** Calls that change nothing in etcd: sent again to another member when one does not answer. */
const READS = new Set(['/v3/kv/range', '/v3/lease/timetolive', '/v3/auth/authenticate']);

const isInvalidToken = (e: unknown): boolean =>
  e instanceof EtcdRequestError && /invalid auth token/i.test(e.message);
const isAuthNotEnabled = (e: unknown): boolean =>
  e instanceof EtcdRequestError && /authentication is not enabled/i.test(e.message);

/**
 * etcd wants a token the call did not carry: it expired, or (`header` without one) etcd's auth was
 * disabled when the client authenticated and has been enabled since.
 */
export const needsToken = (e: unknown, header: Record<string, string>): boolean =>
  isInvalidToken(e) ||
  (header['authorization'] === undefined &&
    e instanceof EtcdRequestError &&
    /user name is empty/i.test(e.message));

/** Classifies etcd's answer `{error,message,code}` into an EtcdRequestError. */
export function answerError(message: string, grpcCode: number): EtcdRequestError {
  const noLeader = /no leader/i.test(message);
  return new EtcdRequestError(message, {
    grpcCode,
    memberFailed: noLeader || grpcCode === GRPC.UNAVAILABLE,
    notApplied: noLeader,
  });
}

const REFUSED = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ENOTFOUND',
]);

/**
 * A transport failure. `reused`: the request went out on a kept-alive connection; a reset there before
 * any answer means the member had closed that idle connection, so the request was not applied (the
 * retry Node's documentation recommends).
 */
function transportError(endpoint: string, err: Error, reused = false): EtcdRequestError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const tls = /certificate|SSL|TLS|self.signed|ERR_TLS/i.test(`${code} ${err.message}`);
  return new EtcdRequestError(`${endpoint}: ${err.message}${tls ? ' (TLS)' : ''}`, {
    grpcCode: GRPC.UNAVAILABLE,
    memberFailed: !(reused && code === 'ECONNRESET'),
    notApplied: REFUSED.has(code) || (reused && code === 'ECONNRESET'),
    cause: err,
  });
}

/**
 * node:https (with node:tls) costs weftd ~1 MiB of RSS at start: loaded only when an endpoint is https.
 */
function httpsModule(): typeof https {
  return process.getBuiltinModule('node:https');
}

export class Endpoint {
  /** performance.now() until which it is skipped (monotonic: a clock stepped back must not extend it). */
  skipUntil = 0;
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
  readonly agent: http.Agent;
  constructor(
    readonly url: string,
    tls: TransportOptions['tls'],
    files?: TlsFiles,
  ) {
    const u = new URL(url);
    this.secure = u.protocol === 'https:';
    this.host = u.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(u.port || (this.secure ? 443 : 80));
    const common = {
      keepAlive: true,
      keepAliveMsecs: 5000,
      maxSockets: 64,
      scheduling: 'lifo' as const,
    };
    this.agent = this.secure
      ? new (httpsModule().Agent)({ ...common, ...tls })
      : new http.Agent(common);
    if (this.secure && files) {
      // Every new connection takes the files as they are now (a rotation needs no restart).
      const create = this.agent.createConnection.bind(this.agent);
      this.agent.createConnection = (o, cb) =>
        create({ ...o, secureContext: files.context() } as http.ClientRequestArgs, cb);
    }
  }
}

export interface CallOptions {
  readonly signal?: AbortSignal | undefined;
  /** Overrides the transport's deadline for this call. */
  readonly timeoutMs?: number;
  /** Only this member, no failover (the watch's liveness probe). */
  readonly endpoint?: Endpoint;
  /** The answer is newline-delimited JSON (a streaming call that ends after one request). */
  readonly ndjson?: boolean;
}

export interface StreamHandlers {
  /** One message of the stream (already parsed JSON). Must not throw. */
  onMessage(msg: unknown): void;
  /** The stream ended: null when etcd closed it cleanly, else the failure. Called once. */
  onClose(err: EtcdRequestError | null): void;
  /** A longer message ends the stream with RESOURCE_EXHAUSTED (default MAX_LINE_BYTES). */
  readonly maxLineBytes?: number;
}

export class HttpTransport {
  readonly endpoints: readonly Endpoint[];
  private current: number;
  private token: Promise<string> | null = null;
  private tokenValue: string | undefined;
  private readonly live = new Set<http.ClientRequest>();
  /** Authentications made (for tests: a token is reused until etcd calls it invalid). */
  authentications = 0;
  private closed = false;

  constructor(private readonly o: TransportOptions) {
    const files =
      o.tls && o.readTls
        ? new TlsFiles(o.readTls, o.tls, o.tlsNames ?? {}, o.onTlsProblem)
        : undefined;
    this.endpoints = o.endpoints.map((e) => new Endpoint(e.replace(/\/$/, ''), o.tls, files));
    this.current = Math.floor(Math.random() * this.endpoints.length);
  }

  /** Whether calls carry a username and password (`needsToken` then asks for a new token). */
  get authenticates(): boolean {
    return this.o.auth !== undefined;
  }

  get requestTimeoutMs(): number {
    return this.o.requestTimeoutMs;
  }

  /** The member to use now: the current one unless skipped, else the next that is not. */
  pick(): Endpoint {
    const n = this.endpoints.length;
    const now = performance.now();
    for (let i = 0; i < n; i++) {
      const idx = (this.current + i) % n;
      if (this.endpoints[idx]!.skipUntil <= now) {
        this.current = idx;
        return this.endpoints[idx]!;
      }
    }
    // All were skipped recently: the one whose skip ends first.
    const until = this.endpoints.map((e) => e.skipUntil);
    this.current = until.indexOf(Math.min(...until));
    return this.endpoints[this.current]!;
  }

  /** Skips `ep` for a while (never with a single endpoint: there is nowhere else to go). */
  markFailed(ep: Endpoint): void {
    if (this.endpoints.length < 2) return;
    ep.skipUntil = performance.now() + ENDPOINT_SKIP_MS;
    if (this.endpoints[this.current] === ep)
      this.current = (this.current + 1) % this.endpoints.length;
  }

  /**
   * The auth header for the next call ({} without auth, or while etcd's auth is disabled),
   * authenticating when there is no token.
   */
  async authHeader(signal?: AbortSignal): Promise<Record<string, string>> {
    if (!this.o.auth) return {};
    if (!this.token) {
      const { username, password } = this.o.auth;
      this.authentications++;
      // With failover like any read: the current member may be the one that is down.
      const p = this.unary(
        '/v3/auth/authenticate',
        { name: username, password },
        { signal },
        true,
      ).then(
        (res) => {
          const t = (res as Record<string, unknown>)['token'];
          if (typeof t !== 'string' || t === '')
            throw new EtcdRequestError('authenticate: etcd answered without a token', {
              grpcCode: GRPC.UNAUTHENTICATED,
            });
          this.tokenValue = t;
          return t;
        },
        (err: unknown) => {
          if (!isAuthNotEnabled(err)) throw err;
          this.tokenValue = ''; // etcd's auth is off: no token needed
          return '';
        },
      );
      this.token = p;
      p.catch(() => {
        if (this.token === p) this.token = null;
      });
    }
    const token = await this.token;
    return token === '' ? {} : { authorization: token };
  }

  /** Forgets `header`'s token (etcd said it is invalid or missing) so the next call authenticates again. */
  dropToken(header: Record<string, string>): void {
    if (this.tokenValue !== undefined && (header['authorization'] ?? '') === this.tokenValue) {
      this.token = null;
      this.tokenValue = undefined;
    }
  }

  /**
   * A unary call: JSON body in, parsed JSON out (for `ndjson`, the list of messages). Retries once with
   * a fresh token when etcd says the token is invalid, and on another member when this one refused
   * before applying, all within one deadline. `anonymous`: without the auth header (authenticating).
   */
  async unary(
    path: string,
    body: unknown,
    opts: CallOptions = {},
    anonymous = false,
  ): Promise<unknown> {
    // Elapsed time: a wall clock stepped meanwhile must neither end the retries nor stretch them.
    const budgetMs = opts.timeoutMs ?? this.o.requestTimeoutMs;
    const deadline = performance.now() + budgetMs;
    let reauthed = false;
    let tries = 0;
    const read = READS.has(path) && !opts.endpoint && this.endpoints.length > 1;
    for (;;) {
      const auth = anonymous ? {} : await this.authHeader(opts.signal);
      const ep = opts.endpoint ?? this.pick();
      const left = deadline - performance.now();
      const untried = this.endpoints.length - tries;
      try {
        return await this.call(
          path,
          body,
          { ...opts, endpoint: ep, timeoutMs: left },
          auth,
          budgetMs,
          read && untried > 1 ? left / untried : undefined,
        );
      } catch (err) {
        if (needsToken(err, auth) && !reauthed && this.o.auth && !anonymous) {
          reauthed = true;
          this.dropToken(auth);
          continue;
        }
        if (err instanceof EtcdRequestError) {
          if (err.memberFailed) this.markFailed(ep);
          if (
            (err.notApplied || (read && err.memberFailed)) &&
            !opts.endpoint &&
            ++tries <= this.endpoints.length &&
            deadline - performance.now() > 50
          )
            continue;
        }
        throw err;
      }
    }
  }

  /**
   * One HTTP request to one member, no retries. `budgetMs`: the whole call's deadline, which a timeout
   * names (the remainder this attempt got, "999.9464630000002 ms", read badly). `answerMs`: a read
   * whose member has not begun to answer by then fails as not applied (the caller tries another).
   */
  private call(
    path: string,
    body: unknown,
    opts: CallOptions,
    auth: Record<string, string>,
    budgetMs?: number,
    answerMs?: number,
  ): Promise<unknown> {
    const ep = opts.endpoint ?? this.pick();
    const timeoutMs = Math.max(1, opts.timeoutMs ?? this.o.requestTimeoutMs);
    return new Promise((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new AbortedError());
      let done = false;
      const req = this.send(ep, path, body, auth);
      const finish = (err: Error | null, value?: unknown): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearTimeout(answerTimer);
        opts.signal?.removeEventListener('abort', onAbort);
        this.live.delete(req);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(value);
      };
      const onAbort = (): void => finish(new AbortedError());
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(
        () =>
          finish(
            new EtcdRequestError(
              `${ep.url}: no answer within ${Math.round(budgetMs ?? timeoutMs)} ms`,
              {
                grpcCode: GRPC.DEADLINE_EXCEEDED,
                memberFailed: true,
              },
            ),
          ),
        timeoutMs,
      );
      const answerTimer =
        answerMs === undefined
          ? undefined
          : setTimeout(
              () =>
                finish(
                  new EtcdRequestError(`${ep.url}: no answer within ${Math.round(answerMs)} ms`, {
                    grpcCode: GRPC.DEADLINE_EXCEEDED,
                    memberFailed: true,
                    notApplied: true,
                  }),
                ),
              answerMs,
            );
      let answered = false;
      req.on('error', (e) => finish(transportError(ep.url, e, req.reusedSocket && !answered)));
      req.on('response', (res) => {
        answered = true;
        clearTimeout(answerTimer);
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES)
            finish(
              new EtcdRequestError(
                `${ep.url}: answer larger than max ${MAX_RESPONSE_BYTES} bytes (RESOURCE_EXHAUSTED)`,
                { grpcCode: GRPC.RESOURCE_EXHAUSTED },
              ),
            );
          else chunks.push(c);
        });
        res.on('error', (e) => finish(transportError(ep.url, e)));
        res.on('end', () => {
          if (done) return;
          try {
            const text = Buffer.concat(chunks, size);
            const splitter = opts.ndjson ? new NdjsonSplitter() : null;
            // One answer (undefined when it is no JSON), or every message of an ndjson answer (a
            // message that is no JSON throws). JSON never parses to undefined.
            const msgs = splitter
              ? [...splitter.push(text), ...splitter.end()]
              : [text.length > 0 ? safeParse(text) : undefined];
            for (const m of msgs) {
              const e = gatewayError(m);
              if (e) throw answerError(e.message, e.grpcCode);
            }
            if (res.statusCode !== 200 || msgs[0] === undefined)
              throw httpStatusError(ep, res.statusCode ?? 0, text);
            finish(null, splitter ? msgs : msgs[0]);
          } catch (err) {
            finish(err as Error);
          }
        });
      });
    });
  }

  /**
   * A streaming call (watch): sends `body`, then hands every message to `h.onMessage` until the stream
   * ends; returns a function that closes it (no onClose after that).
   */
  stream(
    ep: Endpoint,
    path: string,
    body: unknown,
    auth: Record<string, string>,
    h: StreamHandlers,
  ): () => void {
    let done = false;
    const req = this.send(ep, path, body, auth);
    const finish = (err: EtcdRequestError | null, notify = true): void => {
      if (done) return;
      done = true;
      this.live.delete(req);
      req.destroy();
      if (notify) h.onClose(err);
    };
    req.on('error', (e) => finish(transportError(ep.url, e)));
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.length < 16 && chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks);
          const e = gatewayError(safeParse(text));
          finish(
            e ? answerError(e.message, e.grpcCode) : httpStatusError(ep, res.statusCode ?? 0, text),
          );
        });
        res.on('error', (e) => finish(transportError(ep.url, e)));
        return;
      }
      const splitter = new NdjsonSplitter(h.maxLineBytes);
      res.on('data', (c: Buffer) => {
        if (done) return;
        try {
          for (const m of splitter.push(c)) if (!done) h.onMessage(m);
        } catch (err) {
          const tooLarge =
            (err as { details?: Record<string, unknown> }).details?.['tooLarge'] === true;
          finish(
            new EtcdRequestError((err as Error).message, {
              grpcCode: tooLarge ? GRPC.RESOURCE_EXHAUSTED : 2,
              cause: err,
            }),
          );
        }
      });
      res.on('error', (e) => finish(transportError(ep.url, e)));
      res.on('end', () => {
        try {
          for (const m of splitter.end()) if (!done) h.onMessage(m);
        } catch {
          // a cut last line: the stream failed anyway
        }
        finish(null);
      });
    });
    return () => finish(null, false);
  }

  private send(
    ep: Endpoint,
    path: string,
    body: unknown,
    auth: Record<string, string>,
  ): http.ClientRequest {
    if (this.closed) throw new EtcdRequestError('client closed', { grpcCode: GRPC.UNAVAILABLE });
    const payload = JSON.stringify(body);
    const req = (ep.secure ? httpsModule() : http).request({
      agent: ep.agent,
      host: ep.host,
      port: ep.port,
      path,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(payload),
        'grpc-metadata-hasleader': 'true',
        ...auth,
      },
    });
    this.live.add(req);
    req.end(payload);
    return req;
  }

  /** Ends every request in flight and the kept-alive connections. */
  close(): void {
    this.closed = true;
    for (const req of this.live) req.destroy();
    this.live.clear();
    for (const ep of this.endpoints) ep.agent.destroy();
  }
}

function safeParse(text: Buffer): unknown {
  try {
    return parseJson(text.toString('utf8'), 'answer');
  } catch {
    return undefined;
  }
}

function httpStatusError(ep: Endpoint, status: number, body: Buffer): EtcdRequestError {
  const text = body.subarray(0, 120).toString('utf8').replace(/\s+/g, ' ').trim();
  return new EtcdRequestError(`${ep.url}: HTTP ${status}${text ? `: ${text}` : ''}`, {
    grpcCode: status >= 500 || status === 0 ? GRPC.UNAVAILABLE : 2,
    memberFailed: status >= 500 || status === 0,
  });
}
