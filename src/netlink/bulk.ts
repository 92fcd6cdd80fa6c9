/**
 * The fast path for route / neighbour / FDB changes (what `applyBatch` and the single-entry calls use).
 *
 * - Batched: up to `PER_SEND` requests are encoded straight into one buffer and sent as one datagram
 *   (one sendmsg(2)); concurrent callers of the same tick share datagrams.
 * - One ACK per datagram: only a datagram's last request carries NLM_F_ACK. The kernel processes a
 *   datagram's messages in order and answers every failed one anyway (with its sequence number), so the
 *   last request's ACK means "all done; those not reported failed succeeded". This is what makes the
 *   receive side cheap: one ACK to read and dispatch per datagram, not one per entry.
 * - Bounded in flight: at most `maxInFlight` requests (default 64) are sent and not yet acknowledged.
 *   That bounds what the kernel can queue on our receive buffer (one ACK per datagram plus at most one
 *   error per request), so it cannot overflow (README, Dependency decisions).
 * - Each datagram has a deadline; what is still unanswered then fails with E_NETLINK_TIMEOUT. A lost
 *   socket fails everything unacknowledged at once.
 * - One promise per `submit` call (a whole batch), resolved with one result per request.
 * The socket is a dedicated one: its replies are read raw here (no generic parsing).
 */
import {
  errnoFromNumber,
  invalidRequest,
  socketError,
  timeoutError,
  toNetlinkError,
  type NetlinkError,
} from './errors.js';
import { MAX_MESSAGE_BYTES, NLMSG_ERROR, encodeInto, mutationObject, setAck } from './encode.js';
import type { Mutation } from './ops.js';
import type { ManagedSocket } from './sockets.js';

/** Requests per datagram: two datagrams fit in the default in-flight bound, so one is always being
 *  answered while the next is written. */
export const PER_SEND = 32;

const SEQ_MIN = 0x40000000;
const SEQ_MAX = 0x7fffffff;

type Result = NetlinkError | null;

/** One `submit` call. */
interface Job {
  readonly mutations: readonly Mutation[];
  readonly results: Result[];
  /** Next mutation to send. */
  next: number;
  /** Results still missing. */
  remaining: number;
  readonly resolve: (results: Result[]) => void;
}

/** One sent datagram: requests `firstSeq`… in order, each (job, index). */
interface Datagram {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly jobs: Job[];
  readonly index: number[];
  /** Per request: answered already (an error arrived before the final ACK). */
  readonly done: boolean[];
  timer: ReturnType<typeof setTimeout> | null;
}

interface RawSocket {
  send(msg: Buffer, options: undefined, cb: (err?: Error) => void): void;
  on(event: 'message', listener: (msg: Buffer) => void): void;
  removeAllListeners(event: 'message'): void;
  address(): { port: number };
  ref(): void;
  unref(): void;
}

export class BulkSender {
  private readonly queue: Job[] = [];
  private queuedCount = 0;
  /** Unacknowledged datagrams, oldest first (the kernel answers in order). */
  private readonly sent: Datagram[] = [];
  private inflightCount = 0;
  private seq = SEQ_MIN;
  private scheduled = false;
  private attachedTo: unknown = null;
  private raw: RawSocket | null = null;
  private port = 0;
  requests = 0;
  errors = 0;
  timeouts = 0;

  constructor(
    private readonly sock: ManagedSocket,
    private readonly maxInFlight: number,
    private readonly timeoutMs: number,
  ) {
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1)
      throw new TypeError(`max in flight must be ≥ 1, got ${maxInFlight}`);
    sock.onLost(() => this.failAll('ESOCKET'));
  }

  get inFlight(): number {
    return this.inflightCount;
  }

  get queued(): number {
    return this.queuedCount;
  }

  /** Resolves with one result per mutation, in order: null on success or the NetlinkError; never
   *  rejects. */
  submit(mutations: readonly Mutation[]): Promise<Result[]> {
    if (mutations.length === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      this.queue.push({
        mutations,
        results: new Array<Result>(mutations.length).fill(null),
        next: 0,
        remaining: mutations.length,
        resolve,
      });
      this.queuedCount += mutations.length;
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  private settle(job: Job, i: number, err: Result): void {
    this.requests++;
    if (err) {
      this.errors++;
      if (err.code === 'E_NETLINK_TIMEOUT') this.timeouts++;
      job.results[i] = err;
    }
    if (--job.remaining === 0) job.resolve(job.results);
  }

  /** Settles every request of `d` not answered yet with `err(job, index)` (null: success). */
  private complete(d: Datagram, err: (m: Mutation) => Result): void {
    if (d.timer) clearTimeout(d.timer);
    d.timer = null;
    this.inflightCount -= d.jobs.length;
    for (let k = 0; k < d.jobs.length; k++) {
      if (d.done[k]) continue;
      const job = d.jobs[k]!;
      const i = d.index[k]!;
      this.settle(job, i, err(job.mutations[i]!));
    }
  }

  private failAll(errno: string): void {
    for (const d of this.sent.splice(0)) {
      this.complete(d, (m) => socketError(m.op, mutationObject(m), errno));
    }
    if (this.queuedCount > 0) queueMicrotask(() => this.pump());
  }

  private onMessage = (buf: Buffer): void => {
    let off = 0;
    while (off + 16 <= buf.length) {
      const len = buf.readUInt32LE(off);
      if (len < 16 || off + len > buf.length) break;
      if (buf.readUInt16LE(off + 4) === NLMSG_ERROR) {
        const seq = buf.readUInt32LE(off + 8);
        const code = len >= 20 ? buf.readInt32LE(off + 16) : 0;
        this.answer(seq, code);
      }
      off += (len + 3) & ~3;
    }
    this.pump();
  };

  /** One NLMSG_ERROR: an error for one request, or the ACK (or error) of a datagram's last one. */
  private answer(seq: number, code: number): void {
    let at = -1;
    for (let k = 0; k < this.sent.length; k++) {
      const d = this.sent[k]!;
      if (seq >= d.firstSeq && seq <= d.lastSeq) {
        at = k;
        break;
      }
    }
    if (at < 0) return; // timed out already, or not ours
    const d = this.sent[at]!;
    const k = seq - d.firstSeq;
    if (code !== 0 && !d.done[k]) {
      d.done[k] = true;
      const job = d.jobs[k]!;
      const m = job.mutations[d.index[k]!]!;
      this.settle(job, d.index[k]!, errnoFromNumber(-code, m.op, mutationObject(m)));
    }
    if (seq === d.lastSeq) {
      this.sent.splice(at, 1);
      this.complete(d, () => null);
    }
  }

  private attach(): RawSocket {
    const gen = this.sock.current();
    if (this.attachedTo !== gen) {
      // The package's reader would parse every reply generically: this socket's replies are ours.
      const raw = gen.nl.socket.socket as unknown as RawSocket;
      raw.removeAllListeners('message');
      raw.on('message', this.onMessage);
      this.attachedTo = gen;
      this.raw = raw;
      this.port = raw.address().port;
    }
    return this.raw!;
  }

  private pump(): void {
    if (this.queuedCount === 0) {
      this.updateRef();
      return;
    }
    let raw: RawSocket;
    try {
      raw = this.attach();
    } catch (err) {
      for (const job of this.queue.splice(0)) {
        this.queuedCount -= job.mutations.length - job.next;
        for (; job.next < job.mutations.length; job.next++) {
          const m = job.mutations[job.next]!;
          this.settle(job, job.next, toNetlinkError(err, m.op, mutationObject(m)));
        }
      }
      return;
    }
    while (this.queuedCount > 0 && this.inflightCount < this.maxInFlight) {
      this.sendOne(raw, Math.min(PER_SEND, this.maxInFlight - this.inflightCount));
    }
    this.updateRef();
  }

  /** Encodes up to `max` queued requests into one datagram and sends it. */
  private sendOne(raw: RawSocket, max: number): void {
    const want = Math.min(max, this.queuedCount);
    if (this.seq + want > SEQ_MAX) this.seq = SEQ_MIN; // keep a datagram's numbers contiguous
    const buf = Buffer.allocUnsafe(want * MAX_MESSAGE_BYTES);
    const jobs: Job[] = [];
    const index: number[] = [];
    let off = 0;
    let lastStart = -1;
    while (jobs.length < want && this.queuedCount > 0) {
      const job = this.queue[0]!;
      const i = job.next++;
      this.queuedCount--;
      if (job.next === job.mutations.length) this.queue.shift();
      const m = job.mutations[i]!;
      let end: number;
      try {
        end = encodeInto(buf, off, m, this.seq, this.port, false);
      } catch (err) {
        // Malformed input: a typed result for that entry, never a thrown batch.
        this.settle(job, i, invalidRequest(m.op, err));
        continue;
      }
      lastStart = off;
      off = end;
      jobs.push(job);
      index.push(i);
      this.seq++;
    }
    if (jobs.length === 0) return;
    setAck(buf, lastStart, true);
    const d: Datagram = {
      firstSeq: this.seq - jobs.length,
      lastSeq: this.seq - 1,
      jobs,
      index,
      done: new Array<boolean>(jobs.length).fill(false),
      timer: null,
    };
    this.sent.push(d);
    this.inflightCount += jobs.length;
    d.timer = setTimeout(() => {
      d.timer = null;
      const at = this.sent.indexOf(d);
      if (at < 0) return;
      this.sent.splice(at, 1);
      this.complete(d, (m) => timeoutError(m.op, mutationObject(m)));
      this.pump();
    }, this.timeoutMs);
    raw.send(buf.subarray(0, off), undefined, (err) => {
      if (!err) return;
      const at = this.sent.indexOf(d);
      if (at < 0) return;
      this.sent.splice(at, 1);
      this.complete(d, (m) => toNetlinkError(err, m.op, mutationObject(m)));
      this.pump();
    });
  }

  /** Keep the process alive while requests are outstanding, never while idle. */
  private updateRef(): void {
    const gen = this.attachedTo as { dead: boolean } | null;
    if (!gen || gen.dead || !this.raw) return;
    if (this.inflightCount > 0 || this.queuedCount > 0) this.raw.ref();
    else this.raw.unref();
  }
}
