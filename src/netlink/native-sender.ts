/**
 * Ordered mutation streams over weft's native rtnetlink sender (native/src/rtnl_sender.c): the full
 * reconcile's path. rtnetlink does a request's work inside the sender's sendmsg(2), so sending from
 * the JavaScript thread adds the kernel's time to the planning's; the native sender's own thread (and
 * socket) does it on the other CPU while JavaScript goes on planning and encoding.
 *
 * - `push` encodes a mutation into the current chunk; a full chunk is handed to the sender at once
 *   (synchronously: no await per chunk). Chunks are applied in push order over one socket, so the
 *   kernel sees e.g. a peer's neighbour → FDB → route in that order.
 * - `end` hands over the rest and resolves with one result per pushed mutation, in push order: null,
 *   or the NetlinkError (E_NETLINK with the kernel's errno, E_NETLINK_TIMEOUT when the kernel did not
 *   answer by the deadline, E_NETLINK_SOCKET when the socket was lost or closed). Never rejects.
 * - A lost socket fails what was unanswered; the next stream opens a new sender (in the same netns).
 * The single-entry and `applyBatch` calls keep using bulk.ts.
 */
import { loadNative, type NativeRtnlSenderHandle } from '../native/binding.js';
import { inNetns } from '../netns/netns.js';
import {
  errnoFromNumber,
  invalidRequest,
  socketError,
  timeoutError,
  type NetlinkError,
} from './errors.js';
import { MAX_MESSAGE_BYTES, encodeInto, mutationObject } from './encode.js';
import type { Mutation, MutationStream } from './ops.js';

/** Requests per datagram (the floor's batch, bench/native/rtnl-floor.c). */
export const NATIVE_PER_SEND = 64;
/** Requests per chunk handed to the sender: small enough that the kernel starts early, large enough
 *  that the hand-over costs nothing. */
export const CHUNK_REQUESTS = 64;
/** A stream's first chunk; each next one twice as large up to CHUNK_REQUESTS. The kernel starts on the
 *  first peer's entries instead of waiting for 21 peers to be planned, which in a process's first full
 *  reconcile (code not yet optimized) took milliseconds while the kernel idled. */
export const FIRST_CHUNK_REQUESTS = 4;
/** Result codes of native/include/rtnl_sender.h beside the kernel's errno. */
export const RES_TIMEOUT = 0x10000;
export const RES_SOCKET = 0x20000;

type Result = NetlinkError | null;

/** The typed error of one native result code (not 0): the kernel's errno (E_NETLINK), no answer by
 *  the deadline (E_NETLINK_TIMEOUT) or a lost / closed socket (E_NETLINK_SOCKET). */
export function nativeResultError(m: Mutation, r: number): NetlinkError {
  if ((r & RES_TIMEOUT) !== 0) return timeoutError(m.op, mutationObject(m));
  if ((r & RES_SOCKET) !== 0) return socketError(m.op, mutationObject(m));
  return errnoFromNumber(r, m.op, mutationObject(m));
}

export interface NativeSenderOptions {
  readonly netns?: string | undefined;
  readonly timeoutMs: number;
}

/** One stream's bookkeeping. */
interface StreamState {
  readonly mutations: Mutation[];
  /** The failed mutations' results (index → error); the rest succeeded. */
  readonly failed: Map<number, NetlinkError>;
  outstanding: number;
  ended: boolean;
  resolve: ((r: Result[]) => void) | null;
}

export class NativeSender {
  private handle: NativeRtnlSenderHandle | null = null;
  /** The sender keeping the process alive while chunks are outstanding (null: none). */
  private refd: NativeRtnlSenderHandle | null = null;
  private readonly chunks = new Map<number, { s: StreamState; first: number; count: number }>();
  private nextId = 1;
  requests = 0;
  errors = 0;
  timeouts = 0;
  socketErrors = 0;
  private closed = false;

  constructor(private readonly opts: NativeSenderOptions) {}

  /** True when the addon has the sender (else the caller keeps the JavaScript path). */
  static available(): boolean {
    try {
      return typeof loadNative().RtnlSender === 'function';
    } catch {
      return false;
    }
  }

  get inFlight(): number {
    let n = 0;
    for (const c of this.chunks.values()) n += c.count;
    return n;
  }

  /** The live sender, opened on first use (and again after its socket was lost). */
  private sender(): NativeRtnlSenderHandle {
    if (this.closed)
      throw Object.assign(new Error('native rtnetlink sender closed'), { code: 'ESOCKET' });
    if (this.handle) return this.handle;
    const Ctor = loadNative().RtnlSender;
    const open = (): NativeRtnlSenderHandle =>
      new Ctor(NATIVE_PER_SEND, this.opts.timeoutMs, this.onDone);
    this.handle = this.opts.netns ? inNetns(this.opts.netns, open) : open();
    return this.handle;
  }

  /** Hands `bytes` to the sender; a lost socket (EPIPE) is replaced once. Throws when it cannot. */
  private submit(bytes: Buffer, id: number): void {
    const h = this.sender();
    try {
      h.submit(bytes, id);
      return;
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EPIPE' || !h.lost()) throw err;
    }
    this.socketErrors++;
    h.close(); // its unanswered requests were reported failed already
    this.handle = null;
    this.sender().submit(bytes, id);
  }

  private onDone = (id: number, results: Int32Array | null): void => {
    const c = this.chunks.get(id);
    if (!c) return;
    this.chunks.delete(id);
    if (this.chunks.size === 0) {
      this.refd?.unref();
      this.refd = null;
    }
    this.requests += c.count;
    if (results) {
      for (let k = 0; k < c.count; k++) {
        const r = results[k]!;
        if (r === 0) continue;
        const i = c.first + k;
        this.errors++;
        if ((r & RES_TIMEOUT) !== 0) this.timeouts++;
        c.s.failed.set(i, nativeResultError(c.s.mutations[i]!, r));
      }
    }
    c.s.outstanding -= c.count;
    this.settle(c.s);
  };

  private settle(s: StreamState): void {
    if (s.ended && s.outstanding === 0 && s.resolve) {
      const resolve = s.resolve;
      s.resolve = null;
      const results = new Array<Result>(s.mutations.length).fill(null);
      s.failed.forEach((err, i) => (results[i] = err));
      resolve(results);
    }
  }

  /** A new ordered stream (see the file comment). */
  open(): MutationStream {
    const s: StreamState = {
      mutations: [],
      failed: new Map(),
      outstanding: 0,
      ended: false,
      resolve: null,
    };
    // Each stream encodes into its own chunk buffer (6 KiB): two streams open at once (e.g. two
    // networks reconciling) never interleave bytes. The sender copies a chunk when it is submitted.
    const buf = Buffer.allocUnsafe(CHUNK_REQUESTS * MAX_MESSAGE_BYTES);
    let first = 0; // index of the chunk's first mutation
    let off = 0;
    let inChunk = 0;
    let chunkMax = FIRST_CHUNK_REQUESTS;
    const flush = (): void => {
      if (inChunk === 0) {
        first = s.mutations.length;
        return;
      }
      const count = inChunk;
      const start = first;
      const bytes = buf.subarray(0, off);
      first = s.mutations.length;
      off = 0;
      inChunk = 0;
      chunkMax = Math.min(CHUNK_REQUESTS, chunkMax * 2);
      const id = this.nextId++;
      try {
        this.submit(bytes, id);
        if (this.refd !== this.handle) {
          this.refd?.unref();
          this.refd = this.handle;
          this.refd!.ref();
        }
        this.chunks.set(id, { s, first: start, count });
        s.outstanding += count;
      } catch (err) {
        this.socketErrors++;
        for (let i = start; i < start + count; i++) {
          const m = s.mutations[i]!;
          s.failed.set(i, socketError(m.op, mutationObject(m), 'ESOCKET', err));
        }
      }
    };
    return {
      push: (m: Mutation): number => {
        if (s.ended) throw new Error('push after end');
        const i = s.mutations.length;
        s.mutations.push(m);
        try {
          off = encodeInto(buf, off, m, 0, 0, false);
        } catch (err) {
          // Malformed input: a typed result for that entry, never sent.
          s.failed.set(i, invalidRequest(m.op, err));
          if (inChunk === 0) first = i + 1;
          else flush(); // keep a chunk's mutations contiguous
          return i;
        }
        if (++inChunk === chunkMax) flush();
        return i;
      },
      end: (): Promise<Result[]> => {
        if (!s.ended) {
          flush();
          s.ended = true;
        }
        return new Promise((resolve) => {
          s.resolve = resolve;
          this.settle(s);
        });
      },
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handle?.close(); // reports what was unanswered (ESOCKET) through onDone
    this.handle = null;
  }
}
