/**
 * A socket generation's race (src/netlink/sockets.ts): a request settles as itself, or fails at once when
 * its socket dies, and nothing keeps a settled request reachable (the leak it replaced kept every dump's
 * result alive through reactions on one never-settling "lost" promise).
 */
import { describe, expect, it } from 'vitest';
import type { RtNetlinkSocket } from 'netlink';
import { generation } from '../../src/netlink/sockets.js';

const nl = {} as RtNetlinkSocket;

describe('socket generation race', () => {
  it('settles as the request, and holds nothing once every request settled', async () => {
    const g = generation(nl);
    const ok = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => g.race(Promise.resolve(i))),
    );
    expect(ok[999]).toBe(999);
    await expect(g.race(Promise.reject(new Error('EEXIST')))).rejects.toThrow('EEXIST');
    expect(g.waiting).toBe(0);
  });

  it('fails a waiting request at once when the socket dies, and every later one', async () => {
    const g = generation(nl);
    let late!: (v: string) => void;
    let lateFail!: (e: Error) => void;
    const pending = g.race(new Promise<string>((res) => (late = res)));
    const pending2 = g.race(new Promise<string>((_, rej) => (lateFail = rej)));
    expect(g.waiting).toBe(2);
    g.fail(new Error('socket lost'));
    await expect(pending).rejects.toThrow('socket lost');
    await expect(pending2).rejects.toThrow('socket lost');
    expect(g.waiting).toBe(0);
    late('too late'); // no effect on the settled race
    lateFail(new Error('late error')); // handled: not an unhandled rejection
    await expect(g.race(Promise.resolve('x'))).rejects.toThrow('socket lost');
    await expect(g.race(Promise.reject(new Error('y')))).rejects.toThrow('socket lost');
  });
});
