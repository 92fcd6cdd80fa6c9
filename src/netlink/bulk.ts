/**
 * The fast path for route / neighbour / FDB changes: requests are encoded by hand (encode.ts), queued,
 * and sent several per sendmsg(2) (`PER_SEND`), with at most `maxInFlight` unacknowledged at any time.
 * Concurrent callers are coalesced (a burst of single calls in one tick goes out as a few datagrams).
 * Each request carries its own deadline; a lost socket fails every unacknowledged request at once.
 * The socket is a dedicated one: its ACKs are matched here by sequence number.
 */
import type { NetlinkMessage } from 'netlink';
import { NetlinkError, errnoFromNumber, toNetlinkError } from './errors.js';
import { NLMSG_ERROR, stamp } from './encode.js';
import type { ManagedSocket } from './sockets.js';

/** Messages per sendmsg(2): amortises the syscall without making one datagram large. */
export const PER_SEND = 16;

interface Pending {
  readonly msg: Buffer;
  readonly op: string;
  readonly object: string;
  readonly resolve: (err: NetlinkError | null) => void;
  /** The datagram it was sent in (its deadline is shared). */
  sent?: SentBatch;
}

interface SentBatch {
  remaining: number;
  timer: ReturnType<typeof setTimeout> | null;
}

export class BulkSender {
  private readonly queue: Pending[] = [];
  private readonly inflight = new Map<number, Pending>();
  private seq = 0x40000000;
  private scheduled = false;
  private attachedTo: unknown = null;
  private port = 0;
  requests = 0;
  errors = 0;
  timeouts = 0;

  constructor(
    private readonly sock: ManagedSocket,
    private readonly maxInFlight: number,
    private readonly timeoutMs: number,
  ) {
    sock.onLost(() => this.failAll('ESOCKET'));
  }

  get inFlight(): number {
    return this.inflight.size;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Resolves null on success or with a NetlinkError; never rejects. */
  submit(msg: Buffer, op: string, object: string): Promise<NetlinkError | null> {
    return new Promise((resolve) => {
      this.queue.push({ msg, op, object, resolve });
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  private finish(p: Pending, err: NetlinkError | null): void {
    if (p.sent && --p.sent.remaining === 0 && p.sent.timer) clearTimeout(p.sent.timer);
    this.requests++;
    if (err) {
      this.errors++;
      if (err.code === 'E_NETLINK_TIMEOUT') this.timeouts++;
    }
    p.resolve(err);
  }

  private failAll(errno: string): void {
    const pending = [...this.inflight.values()];
    this.inflight.clear();
    for (const p of pending) {
      this.finish(p, new NetlinkError('E_NETLINK_SOCKET', errno, p.op, p.object, undefined, true));
    }
    if (this.queue.length > 0) queueMicrotask(() => this.pump());
  }

  private onMessage = (msgs: NetlinkMessage[]): void => {
    for (const m of msgs) {
      if (m.type !== NLMSG_ERROR) continue;
      const p = this.inflight.get(m.seq);
      if (!p) continue;
      this.inflight.delete(m.seq);
      const code = m.data.length >= 4 ? m.data.readInt32LE(0) : 0;
      this.finish(p, code === 0 ? null : errnoFromNumber(-code, p.op, p.object));
    }
    this.pump();
  };

  private pump(): void {
    if (this.queue.length === 0) {
      this.updateRef();
      return;
    }
    let gen;
    try {
      gen = this.sock.current();
    } catch (err) {
      for (const p of this.queue.splice(0)) this.finish(p, toNetlinkError(err, p.op, p.object));
      return;
    }
    if (this.attachedTo !== gen) {
      // The package's rtnetlink wrapper would try to parse every ACK: this socket's ACKs are ours.
      gen.nl.socket.removeAllListeners('message');
      gen.nl.socket.on('message', this.onMessage);
      this.attachedTo = gen;
      this.port = gen.nl.socket.socket.address().port;
    }
    const raw = gen.nl.socket.socket;
    const port = this.port;
    while (this.queue.length > 0 && this.inflight.size < this.maxInFlight) {
      const n = Math.min(PER_SEND, this.maxInFlight - this.inflight.size, this.queue.length);
      const batch = this.queue.splice(0, n);
      const bufs: Buffer[] = [];
      const seqs: number[] = [];
      const sent: SentBatch = { remaining: batch.length, timer: null };
      for (const p of batch) {
        p.sent = sent;
        const seq = this.seq;
        this.seq = this.seq >= 0x7fffffff ? 0x40000000 : this.seq + 1;
        stamp(p.msg, seq, port);
        bufs.push(p.msg);
        this.inflight.set(seq, p);
        seqs.push(seq);
      }
      // One deadline per datagram: whatever of it is still unacknowledged then has timed out.
      sent.timer = setTimeout(() => {
        sent.timer = null;
        let expired = false;
        for (const seq of seqs) {
          const p = this.inflight.get(seq);
          if (!p) continue;
          this.inflight.delete(seq);
          expired = true;
          this.finish(
            p,
            new NetlinkError('E_NETLINK_TIMEOUT', 'ETIMEDOUT', p.op, p.object, undefined, true),
          );
        }
        if (expired) this.pump();
      }, this.timeoutMs);
      raw.send(bufs, undefined, (err) => {
        if (!err) return;
        for (const seq of seqs) {
          const p = this.inflight.get(seq);
          if (!p) continue;
          this.inflight.delete(seq);
          this.finish(p, toNetlinkError(err, p.op, p.object));
        }
      });
    }
    this.updateRef();
  }

  /** Keep the process alive while requests are outstanding, never while idle. */
  private updateRef(): void {
    const gen = this.attachedTo as {
      nl: { socket: { socket: { ref(): void; unref(): void } } };
      dead: boolean;
    } | null;
    if (!gen || gen.dead) return;
    if (this.inflight.size > 0 || this.queue.length > 0) gen.nl.socket.socket.ref();
    else gen.nl.socket.socket.unref();
  }
}
