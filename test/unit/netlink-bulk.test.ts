/**
 * The bulk sender's protocol against a scripted socket (pure logic; the real kernel path is in
 * test/integration/netlink-facade.test.ts): requests go out several per datagram with NLM_F_ACK on the
 * last one only, never more than maxInFlight unacknowledged; an error reply settles its own entry, the
 * final ACK settles the rest; a datagram nobody answers times out; a lost socket fails what is pending.
 */
import { describe, expect, it } from 'vitest';
import { BulkSender, PER_SEND } from '../../src/netlink/bulk.js';
import { NLM_F_ACK } from '../../src/netlink/encode.js';
import type { Mutation } from '../../src/netlink/ops.js';
import type { ManagedSocket } from '../../src/netlink/sockets.js';

interface Sent {
  seqs: number[];
  acked: boolean[];
}

/** A raw socket that records datagrams; `reply` feeds NLMSG_ERROR messages back. */
function fakeSocket() {
  let listener: ((b: Buffer) => void) | null = null;
  const lost: ((e: Error) => void)[] = [];
  const sent: Sent[] = [];
  const raw = {
    send(buf: Buffer, _o: undefined, cb: (err?: Error) => void) {
      const d: Sent = { seqs: [], acked: [] };
      for (let off = 0; off < buf.length;) {
        const len = buf.readUInt32LE(off);
        d.seqs.push(buf.readUInt32LE(off + 8));
        d.acked.push((buf.readUInt16LE(off + 6) & NLM_F_ACK) !== 0);
        off += (len + 3) & ~3;
      }
      sent.push(d);
      cb();
    },
    on: (_e: 'message', l: (b: Buffer) => void) => void (listener = l),
    removeAllListeners: () => void (listener = null),
    address: () => ({ port: 77 }),
    ref: () => {},
    unref: () => {},
  };
  const gen = { nl: { socket: { socket: raw } }, dead: false };
  const sock = {
    onLost: (l: (e: Error) => void) => void lost.push(l),
    current: () => gen,
  } as unknown as ManagedSocket;
  const reply = (...answers: [seq: number, errno: number][]): void => {
    const b = Buffer.alloc(answers.length * 36);
    answers.forEach(([seq, errno], i) => {
      b.writeUInt32LE(36, i * 36);
      b.writeUInt16LE(2, i * 36 + 4); // NLMSG_ERROR
      b.writeUInt32LE(seq, i * 36 + 8);
      b.writeInt32LE(-errno, i * 36 + 16);
    });
    listener!(b);
  };
  return { sock, sent, reply, lose: () => lost.forEach((l) => l(new Error('ENOBUFS'))) };
}

const routes = (n: number): Mutation[] =>
  Array.from({ length: n }, (_, i) => ({
    op: 'routeReplace' as const,
    route: { dst: `10.9.${i & 255}.0/24`, oif: 3 },
  }));
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('bulk sender', () => {
  it('sends datagrams with one ACK each, keeps ≤ maxInFlight unacknowledged, maps errors to entries', async () => {
    const f = fakeSocket();
    const bulk = new BulkSender(f.sock, 64, 5_000);
    const done = bulk.submit(routes(150));
    await tick();
    // 64 in flight: two datagrams of PER_SEND, nothing more until ACKs come.
    expect(f.sent.map((d) => d.seqs.length)).toEqual([PER_SEND, 64 - PER_SEND]);
    expect(bulk.inFlight).toBe(64);
    expect(bulk.queued).toBe(150 - 64);
    for (const d of f.sent) expect(d.acked).toEqual(d.seqs.map((_, i) => i === d.seqs.length - 1));
    // The first datagram: its 3rd entry fails (ENODEV 19), then the final ACK.
    const d0 = f.sent[0]!;
    f.reply([d0.seqs[2]!, 19], [d0.seqs.at(-1)!, 0]);
    expect(bulk.inFlight).toBe(64); // refilled up to the bound at once
    let k = 1;
    while (k < f.sent.length) {
      const d = f.sent[k++]!;
      // the last entry of the 2nd datagram fails: its error is also that datagram's final answer
      f.reply([d.seqs.at(-1)!, k === 2 ? 17 : 0]);
      expect(bulk.inFlight).toBeLessThanOrEqual(64);
    }
    const results = await done;
    expect(results).toHaveLength(150);
    const failed = results.flatMap((r, i) => (r ? [[i, r.errno]] : []));
    expect(failed).toEqual([
      [2, 'ENODEV'],
      [63, 'EEXIST'],
    ]);
    expect(results[2]).toMatchObject({
      code: 'E_NETLINK',
      op: 'routeReplace',
      object: '10.9.2.0/24 dev 3',
    });
    expect(bulk.requests).toBe(150);
    expect(bulk.errors).toBe(2);
    expect(bulk.inFlight).toBe(0);
  });

  it('times out an unanswered datagram, settles the others, and a lost socket fails what is pending', async () => {
    const f = fakeSocket();
    const bulk = new BulkSender(f.sock, 8, 50);
    const a = bulk.submit(routes(4));
    const b = bulk.submit(routes(2));
    await tick();
    expect(f.sent.map((d) => d.seqs.length)).toEqual([6]); // two calls of one tick share a datagram
    const ra = await a;
    expect(ra.every((r) => r?.code === 'E_NETLINK_TIMEOUT')).toBe(true);
    expect((await b).every((r) => r?.errno === 'ETIMEDOUT')).toBe(true);
    expect(bulk.timeouts).toBe(6);
    const c = bulk.submit(routes(3));
    await tick();
    f.lose();
    expect((await c).map((r) => r?.code)).toEqual(Array(3).fill('E_NETLINK_SOCKET'));
    // A late answer for a settled datagram is ignored.
    f.reply([f.sent[0]!.seqs.at(-1)!, 0]);
    expect(bulk.inFlight).toBe(0);
  });

  it('returns a typed EINVAL for a malformed entry without shifting the others', async () => {
    const f = fakeSocket();
    const bulk = new BulkSender(f.sock, 64, 5_000);
    const ms = routes(3);
    ms[1] = { op: 'routeReplace', route: { dst: 'nope', oif: 3 } };
    const p = bulk.submit(ms);
    await tick();
    expect(f.sent[0]!.seqs).toHaveLength(2);
    f.reply([f.sent[0]!.seqs[1]!, 0]);
    const r = await p;
    expect(r[0]).toBeNull();
    expect(r[1]).toMatchObject({ errno: 'EINVAL' });
    expect(r[2]).toBeNull();
  });
});
