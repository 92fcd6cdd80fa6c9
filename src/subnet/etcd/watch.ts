/**
 * etcd's Watch service over the JSON gateway: `POST /v3/watch` with one create request, answered by a
 * stream of `{"result":WatchResponse}` lines for as long as the HTTP response stays open.
 *
 * - Reconnects by itself (100 ms doubling up to WATCH_BACKOFF_MAX_MS, ±20 % jitter) after a transport
 *   failure, a member without a leader or the member closing the stream, resuming after the last event
 *   delivered, on another member when there are several.
 * - Liveness: HTTP has no gRPC keepalive pings, so while a watch is open it probes its member every
 *   WATCH_PROBE_MS with a cheap serializable count (which, with require-leader, also fails on a member
 *   that lost its leader); no answer within WATCH_PROBE_TIMEOUT_MS and the watch moves to another
 *   member. A partitioned member is noticed within ~8 s. The probe goes over another connection, so
 *   it cannot see the watch's own stream stall (a proxy or load balancer whose upstream hangs keeps
 *   the connection open and silent): when the store moved past what the watch delivered, a probe (at
 *   most every WATCH_STALL_CHECK_MS) also asks for a key of the range changed before the previous
 *   probe and not delivered since, and, as a deleted key leaves nothing to read, compares the range's
 *   count then with its count at the last revision the watch is known to match (with no undelivered
 *   put, fewer keys means an undelivered deletion: leases are renewed by keepalive, so expiries may be
 *   the only changes for hours). Either way the stream is stalled and the watch resumes on a new one.
 *   When that known revision was compacted the deletion check waits for the next delivered event.
 * - Ends for good (onFatal) when etcd cancels the watch: its start revision was compacted (the error
 *   names the compact revision: re-list), or another reason; when the store's revision is behind what
 *   the watch already saw (etcd wiped or restored: re-list, like a compaction), or, checked on every
 *   reconnect with one keys-only read, the store no longer holds a key the watch saw as it saw it (a
 *   reset whose store is already past that revision, watch-anchor.ts); and on an authentication
 *   failure that a fresh token does not cure.
 */
import { AbortedError } from '../../errors.js';
import { backoffMs, sleep } from '../sleep.js';
import {
  arr,
  b64,
  bool,
  gatewayError,
  header,
  int64,
  keyRange,
  keyValue,
  obj,
  str,
  type KeyValue,
  type ResponseHeader,
} from './json-codec.js';
import {
  answerError,
  EtcdRequestError,
  GRPC,
  needsToken,
  type Endpoint,
  type HttpTransport,
} from './http-transport.js';
import {
  anchorMismatch,
  anchorOf,
  resetError,
  takeAnchor,
  type WatchAnchor,
} from './watch-anchor.js';

export const WATCH_PROBE_MS = 5000;
export const WATCH_PROBE_TIMEOUT_MS = 3000;
/** Least time between two stalled-stream reads (each reads the keys of the range, without values). */
export const WATCH_STALL_CHECK_MS = 15_000;

export interface WatchEvent {
  readonly type: 'PUT' | 'DELETE';
  readonly kv: KeyValue;
}

export interface WatchResponse {
  readonly header: ResponseHeader;
  readonly events: readonly WatchEvent[];
  /** The mod revision of the last event (where a resumed watch continues after). */
  readonly lastRevision: string;
}

export interface WatchOptions {
  readonly key: string | Uint8Array;
  readonly rangeEnd?: string | Uint8Array;
  /** The first revision delivered. */
  readonly startRevision: string;
  /** Values longer than this are not decoded (KeyValue.value null). */
  readonly maxValueBytes?: number;
  /**
   * A watch response longer than this (default MAX_LINE_BYTES) ends the watch for good with
   * RESOURCE_EXHAUSTED: resuming would fetch the same response again, a re-list reads in pages.
   */
  readonly maxLineBytes?: number;
  /** A response with events. May throw: the watch then ends with that error. */
  onResponse(res: WatchResponse): void;
  /** The watch ended for good (compaction, cancel, auth): not called after close(). */
  onFatal(err: EtcdRequestError): void;
  onConnected?(endpoint: string): void;
  onDisconnected?(endpoint: string, err: Error | null): void;
}

/** Decodes one `result` of the watch stream. */
export function decodeWatchResponse(
  v: unknown,
  maxValueBytes = Infinity,
): {
  header: ResponseHeader;
  created: boolean;
  canceled: boolean;
  compactRevision: string;
  cancelReason: string;
  events: WatchEvent[];
} {
  const r = obj(v, 'watch.result');
  return {
    header: header(r['header']),
    created: bool(r['created'], 'watch.created'),
    canceled: bool(r['canceled'], 'watch.canceled'),
    compactRevision: int64(r['compact_revision'], 'watch.compact_revision'),
    cancelReason: str(r['cancel_reason'], 'watch.cancel_reason'),
    events: arr(r['events'], 'watch.events').map((e, i) => {
      const ev = obj(e, `watch.events[${i}]`);
      const type = ev['type'] === undefined ? 'PUT' : ev['type'];
      if (type !== 'PUT' && type !== 'DELETE')
        throw answerError(`watch.events[${i}].type is ${JSON.stringify(type)}`, 2);
      return { type, kv: keyValue(ev['kv'], `watch.events[${i}].kv`, maxValueBytes) };
    }),
  };
}

/**
 * The longest wait between two reconnects. flannel waits up to 5 s, but with ±20 % jitter that let a
 * watch sleep 6 s after etcd came back from a long outage, past the 5 s in which weft programs a new
 * lease (test/e2e/etcd-cluster.test.ts saw 5.1 s); a reconnect is one HTTP request, cheap at 2 s.
 */
export const WATCH_BACKOFF_MAX_MS = 2000;

/** A running watch; close() stops it (no callbacks after). */
export class Watch {
  private closed = false;
  private closeStream: (() => void) | null = null;
  private probe: ReturnType<typeof setInterval> | null = null;
  private next: bigint;
  private attempt = 0;
  /** A key of the range as this watch knew it: a reconnect checks the store still has it. */
  private anchor: WatchAnchor | null = null;
  private readonly probeAbort = new AbortController();
  /** The store revision at the stream's previous probe (null: none yet on this stream). */
  private probedRev: bigint | null = null;
  private lastStallCheck = -Infinity;
  /** A store revision whose range the watch has delivered in full (a stall check found nothing). */
  private verifiedRev = 0n;

  constructor(
    private readonly t: HttpTransport,
    private readonly o: WatchOptions,
  ) {
    this.next = BigInt(o.startRevision);
    void this.loop();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopStream();
    this.probeAbort.abort();
  }

  private stopStream(): void {
    if (this.probe) clearInterval(this.probe);
    this.probe = null;
    this.closeStream?.();
    this.closeStream = null;
  }

  private fatal(err: EtcdRequestError): void {
    if (this.closed) return;
    this.close();
    this.o.onFatal(err);
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      const { err, ep } = await this.once().catch((e: unknown) => ({ err: e as Error, ep: null }));
      if (this.closed) return;
      if (err instanceof EtcdRequestError && err.grpcCode === GRPC.RESOURCE_EXHAUSTED)
        return this.fatal(
          new EtcdRequestError(`watch answer too large (${err.message}): re-list instead`, {
            grpcCode: GRPC.RESOURCE_EXHAUSTED,
            cause: err,
          }),
        );
      if (
        err instanceof EtcdRequestError &&
        !err.memberFailed &&
        err.grpcCode === GRPC.UNAUTHENTICATED
      )
        return this.fatal(err);
      if (ep) this.o.onDisconnected?.(ep.url, err);
      if (ep && (err === null || (err instanceof EtcdRequestError && err.memberFailed)))
        this.t.markFailed(ep);
      // close() aborts probeAbort, which ends this wait at once
      const ms = backoffMs(this.attempt++, 100, WATCH_BACKOFF_MAX_MS);
      await sleep(ms, this.probeAbort.signal).catch(() => {});
    }
  }

  /** One connection: resolves when it ends (err null: etcd closed it), after a fatal end too. */
  private async once(): Promise<{ err: Error | null; ep: Endpoint | null }> {
    let auth: Record<string, string>;
    try {
      auth = await this.t.authHeader(this.probeAbort.signal);
    } catch (err) {
      if (err instanceof AbortedError) return { err: null, ep: null };
      // A wrong password is fatal; etcd unreachable is retried.
      if (err instanceof EtcdRequestError && !err.memberFailed) {
        this.fatal(err);
        return { err: null, ep: null };
      }
      return { err: err as Error, ep: null };
    }
    if (this.closed) return { err: null, ep: null };
    const ep = this.t.pick();
    try {
      if (!(await this.sameStore(ep))) return { err: null, ep: null };
    } catch (err) {
      return { err: err instanceof AbortedError ? null : (err as Error), ep };
    }
    if (this.closed) return { err: null, ep: null };
    const body = {
      create_request: {
        ...keyRange(this.o.key, this.o.rangeEnd),
        start_revision: this.next.toString(),
      },
    };
    return new Promise((resolve) => {
      let settled = false;
      const end = (err: Error | null): void => {
        if (settled) return;
        settled = true;
        this.stopStream();
        resolve({ err, ep });
      };
      /** The watch ended for good: no reconnect. */
      const die = (err: EtcdRequestError): void => {
        settled = true;
        this.stopStream();
        this.fatal(err);
        resolve({ err: null, ep: null });
      };
      const onMessage = (msg: unknown): void => {
        if (settled) return;
        try {
          const e = gatewayError(msg);
          if (e) return end(answerError(e.message, e.grpcCode));
          const r = decodeWatchResponse(obj(msg, 'watch')['result'], this.o.maxValueBytes);
          if (r.canceled) {
            if (
              /invalid auth token/i.test(r.cancelReason) ||
              (this.t.authenticates &&
                needsToken(answerError(r.cancelReason, GRPC.UNAUTHENTICATED), auth))
            ) {
              this.t.dropToken(auth);
              this.attempt = 0;
              return end(new EtcdRequestError(r.cancelReason, { grpcCode: GRPC.UNAVAILABLE }));
            }
            if (/no leader/i.test(r.cancelReason))
              return end(answerError(r.cancelReason, GRPC.UNAVAILABLE));
            const compacted = r.compactRevision !== '0';
            return die(
              new EtcdRequestError(
                compacted
                  ? `mvcc: required revision has been compacted (watch from ${this.next} canceled, compact revision ${r.compactRevision})`
                  : `Watcher canceled: ${r.cancelReason || 'by etcd'}`,
                {
                  grpcCode: compacted
                    ? GRPC.OUT_OF_RANGE
                    : /auth|permission/i.test(r.cancelReason)
                      ? GRPC.UNAUTHENTICATED
                      : 1,
                },
              ),
            );
          }
          if (r.created && BigInt(r.header.revision) + 1n < this.next) {
            // The store is behind what this watch already saw: etcd was wiped or restored from an
            // older backup. A future start revision is accepted silently and would hide every event
            // until the new store catches up, so the caller must re-list, as after a compaction.
            return die(
              new EtcdRequestError(
                `etcd store revision ${r.header.revision} is behind this watch's ${this.next - 1n} (etcd reset or restored): re-list`,
                { grpcCode: GRPC.OUT_OF_RANGE },
              ),
            );
          }
          if (r.created) {
            this.attempt = 0;
            this.o.onConnected?.(ep.url);
          }
          if (r.events.length === 0) return;
          let last = 0n;
          for (const ev of r.events) {
            const rev = BigInt(ev.kv.modRevision);
            if (rev > last) last = rev;
            if (ev.type === 'PUT') this.anchor = anchorOf(ev.kv);
          }
          if (last >= this.next) this.next = last + 1n;
          this.o.onResponse({ header: r.header, events: r.events, lastRevision: last.toString() });
        } catch (err) {
          die(
            err instanceof EtcdRequestError
              ? err
              : new EtcdRequestError((err as Error).message, { grpcCode: 2, cause: err }),
          );
        }
      };
      try {
        this.closeStream = this.t.stream(ep, '/v3/watch', body, auth, {
          onMessage,
          onClose: (err) => end(err),
          ...(this.o.maxLineBytes !== undefined ? { maxLineBytes: this.o.maxLineBytes } : {}),
        });
      } catch (err) {
        return end(err as Error);
      }
      this.probedRev = null;
      this.probe = setInterval(() => void this.check(ep, end), WATCH_PROBE_MS);
      this.probe.unref?.();
    });
  }

  /**
   * Before each (re)connection: takes the anchor when there is none, else checks the store still holds
   * it (watch-anchor.ts). False when the store was reset (the watch then ended for good: re-list);
   * throws when `ep` did not answer. A read the member refuses otherwise (a permission, an odd answer)
   * lets the watch go on unchecked this time.
   */
  private async sameStore(ep: Endpoint): Promise<boolean> {
    const o = { endpoint: ep, timeoutMs: this.t.requestTimeoutMs, signal: this.probeAbort.signal };
    try {
      if (this.anchor === null) {
        if (this.next > 1n) this.anchor = await takeAnchor(this.t, this.o, this.next - 1n, o);
        return true;
      }
      const why = await anchorMismatch(this.t, this.o, this.anchor, o);
      if (why === null) return true;
      this.fatal(resetError(why));
    } catch (err) {
      if (err instanceof EtcdRequestError && err.grpcCode === GRPC.OUT_OF_RANGE) this.fatal(err);
      else if (err instanceof AbortedError || (err instanceof EtcdRequestError && err.memberFailed))
        throw err;
      else return true;
    }
    return false;
  }

  private probing = false;

  /** The liveness probe: a serializable count of the watched key on the watch's member. */
  private async check(ep: Endpoint, end: (err: Error | null) => void): Promise<void> {
    if (this.probing || this.closed) return;
    this.probing = true;
    const o = { endpoint: ep, timeoutMs: WATCH_PROBE_TIMEOUT_MS, signal: this.probeAbort.signal };
    try {
      const res = await this.t.unary(
        '/v3/kv/range',
        { key: b64(this.o.key), count_only: true, serializable: true, limit: '1' },
        o,
      );
      const before = this.probedRev;
      this.probedRev = BigInt(header(obj(res, 'range')['header']).revision);
      const now = performance.now();
      // The store as of `known` is what the watch has delivered.
      const known = this.verifiedRev > this.next - 1n ? this.verifiedRev : this.next - 1n;
      if (before === null || before <= known || now - this.lastStallCheck < WATCH_STALL_CHECK_MS)
        return;
      this.lastStallCheck = now;
      const range = { ...keyRange(this.o.key, this.o.rangeEnd), serializable: true };
      const missed = await this.t.unary(
        '/v3/kv/range',
        {
          ...range,
          keys_only: true,
          limit: '1',
          revision: before.toString(),
          min_mod_revision: (known + 1n).toString(),
          max_mod_revision: before.toString(),
        },
        o,
      );
      let why = '';
      if (arr(obj(missed, 'range')['kvs'], 'range.kvs').length > 0) why = 'a change';
      else {
        // No key present at `before` changed after `known`: every one was there at `known` too, so
        // fewer keys at `before` means some were deleted (an expired lease) and not delivered.
        const count = async (at: bigint): Promise<bigint> => {
          if (at < 1n) return 0n; // revision 0 would read the current store
          const r = await this.t.unary(
            '/v3/kv/range',
            { ...range, count_only: true, revision: at.toString() },
            o,
          );
          return BigInt(int64(obj(r, 'range')['count'], 'range.count'));
        };
        if ((await count(before)) < (await count(known))) why = 'a deletion';
        else if (before > this.verifiedRev) this.verifiedRev = before;
      }
      if (why !== '' && !this.closed && this.next <= before)
        end(
          new EtcdRequestError(
            `watch stream on ${ep.url} stalled: ${why} at revision ${known + 1n}..${before} was not delivered`,
            { grpcCode: GRPC.UNAVAILABLE },
          ),
        );
    } catch (err) {
      if (!this.closed && err instanceof EtcdRequestError && err.memberFailed)
        end(
          new EtcdRequestError(`watch member ${ep.url} stopped answering: ${err.message}`, {
            grpcCode: GRPC.UNAVAILABLE,
            memberFailed: true,
            cause: err,
          }),
        );
    } finally {
      this.probing = false;
    }
  }
}
