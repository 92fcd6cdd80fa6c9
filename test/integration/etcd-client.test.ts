/**
 * weft's etcd client (src/subnet/etcd/: etcd's JSON gateway over node:http) against a real etcd:
 *  - auth: a token that expired (--auth-token-ttl 2) is renewed by one re-authentication, for unary
 *    calls and for a watch that reconnects after an etcd restart (all simple tokens invalid then);
 *  - a watch from a compacted revision ends with the compact revision (E_ETCD_COMPACTED);
 *  - a catch-up watch answer longer than the line bound ends the watch as an overflow (the consumer
 *    re-lists in pages) instead of reconnecting to the same answer forever;
 *  - require-leader reaches etcd: a member without a leader refuses at once with "no leader", where the
 *    same request without the header waits for the deadline;
 *  - an abort ends the request itself, and close() leaves nothing running.
 */
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { AbortedError, hasCode } from '../../src/errors.js';
import { EtcdClient, translateEtcdError } from '../../src/subnet/etcd/client.js';
import { EtcdRequestError } from '../../src/subnet/etcd/http-transport.js';
import type { WatchResponse } from '../../src/subnet/etcd/watch.js';
import { startEtcd, type EtcdFixture } from '../helpers/etcd.js';
import { sleep, spawnTracked, stopChild, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('etcd', 'etcdctl');
useLeakCheck();

describe.skipIf(!runnable)('etcd client over the JSON gateway', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('fails over from a refusing member within its deadline, though the wall clock jumps meanwhile', async () => {
    const etcd = await startEtcd();
    cleanup.push(() => etcd.stop());
    // A member that refuses connections (a port nobody listens on), then the real one.
    const refusing = await new Promise<number>((resolve) => {
      const srv = http.createServer().listen(0, '127.0.0.1', () => {
        const port = (srv.address() as { port: number }).port;
        srv.close(() => resolve(port));
      });
    });
    const client = new EtcdClient({
      endpoints: [`http://127.0.0.1:${refusing}`, ...etcd.endpoints],
      requestTimeoutMs: 5000,
    });
    cleanup.push(() => client.close());
    const [first, real] = client.transport.endpoints;
    client.transport.markFailed(real!); // start on the refusing member, retry on the real one
    expect(client.transport.pick()).toBe(first);
    const key = `${etcd.prefix('clock')}/k`;
    const wall = Date.now.bind(Date);
    let reads = 0;
    // NTP steps the clock forward an hour right after the call took its deadline.
    const spy = vi.spyOn(Date, 'now').mockImplementation(() => wall() + (reads++ > 0 ? 3.6e6 : 0));
    try {
      await client.kv.put({ key, value: '1' });
    } finally {
      spy.mockRestore();
    }
    expect((await etcd.etcdctl(['get', key, '--print-value-only'])).trim()).toBe('1');
  });

  it('a read that meets a frozen member goes on to another one within its deadline', async () => {
    // A member that accepts connections and never answers: SIGSTOPped, or cut off behind a
    // stateful firewall that still completes handshakes. Before, a read sent there waited out its
    // whole deadline and failed: weftctl, which makes one attempt per command, failed one run in
    // three against a 3-member cluster with one member frozen (exit 4, "no answer within 3000 ms").
    const etcd = await startEtcd();
    cleanup.push(() => etcd.stop());
    const held: net.Socket[] = [];
    const frozen = net.createServer((s) => void held.push(s));
    await new Promise<void>((r) => frozen.listen(0, '127.0.0.1', r));
    cleanup.push(
      () =>
        new Promise<void>((r) => {
          for (const s of held) s.destroy();
          frozen.close(() => r());
        }),
    );
    const key = `${etcd.prefix('frozen')}/k`;
    await etcd.etcdctl(['put', key, 'v']);
    const client = new EtcdClient({
      endpoints: [
        `http://127.0.0.1:${(frozen.address() as net.AddressInfo).port}`,
        ...etcd.endpoints,
      ],
      requestTimeoutMs: 3000,
    });
    cleanup.push(() => client.close());
    const [first, real] = client.transport.endpoints;
    client.transport.markFailed(real!); // start on the frozen member
    expect(client.transport.pick()).toBe(first);
    const t0 = performance.now();
    const r = await client.kv.range({ key });
    expect(r.kvs[0]?.value?.toString()).toBe('v');
    expect(performance.now() - t0).toBeLessThan(3000);
    // The lease TTL lookup (weftctl leases) too.
    client.transport.endpoints[0]!.skipUntil = 0;
    client.transport.markFailed(real!);
    expect(client.transport.pick()).toBe(first);
    const ttl = await client.lease.timeToLive('1234').catch((e: unknown) => e);
    expect(String(ttl)).not.toMatch(/no answer/);

    // A member in an election answers a read with etcd's "leader changed" (UNAVAILABLE): the read
    // goes on to another member (weftctl failed at once, exit 4, right after a leader was stopped).
    const electing = http.createServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(
        '{"error":"etcdserver: leader changed","code":14,"message":"etcdserver: leader changed"}',
      );
    });
    await new Promise<void>((r) => electing.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => electing.close(() => r())));
    const c2 = new EtcdClient({
      endpoints: [
        `http://127.0.0.1:${(electing.address() as net.AddressInfo).port}`,
        ...etcd.endpoints,
      ],
      requestTimeoutMs: 3000,
    });
    cleanup.push(() => c2.close());
    c2.transport.markFailed(c2.transport.endpoints[1]!);
    expect(c2.transport.pick()).toBe(c2.transport.endpoints[0]);
    expect((await c2.kv.range({ key })).kvs[0]?.value?.toString()).toBe('v');
  });

  it('renews an expired auth token by itself, for calls and for a reconnecting watch', async () => {
    const etcd: EtcdFixture = await startEtcd({
      extraArgs: ['--auth-token-ttl', '2'],
      etcdctlArgs: ['--user', 'root:weft-secret'],
    });
    cleanup.push(() => etcd.stop());
    await etcd.etcdctl(['user', 'add', 'root', '--new-user-password', 'weft-secret']);
    await etcd.etcdctl(['auth', 'enable']);
    const prefix = etcd.prefix('auth');
    const client = new EtcdClient({
      endpoints: etcd.endpoints,
      requestTimeoutMs: 5000,
      auth: { username: 'root', password: 'weft-secret' },
    });
    cleanup.push(() => client.close());
    const authentications = (): number => client.transport.authentications;
    await client.kv.put({ key: `${prefix}/a`, value: '1' });
    expect(authentications()).toBe(1);
    const got: WatchResponse[] = [];
    let fatal: Error | null = null;
    const w = client.watch({
      key: `${prefix}/w`,
      startRevision: '1',
      onResponse: (r) => got.push(r),
      onFatal: (e) => (fatal = e),
    });
    cleanup.push(() => w.close());
    await sleep(3500); // the token expired
    const r = await client.kv.range({ key: `${prefix}/a` });
    expect(r.kvs[0]?.value?.toString()).toBe('1');
    expect(authentications()).toBe(2); // one re-authentication, then the call went through
    // An etcd restart forgets every simple token: the watch reconnects, is refused, re-authenticates.
    await etcd.kill();
    await etcd.start();
    await client.kv.put({ key: `${prefix}/w`, value: 'after' });
    await waitFor('the watch delivers the put', async () => got.length >= 1, 15_000, 50);
    expect(fatal).toBeNull();
    expect(got[0]!.events[0]!.kv.value?.toString()).toBe('after');
    // A wrong password is an auth error, not a retry loop.
    const bad = new EtcdClient({
      endpoints: etcd.endpoints,
      requestTimeoutMs: 2000,
      auth: { username: 'root', password: 'wrong' },
    });
    cleanup.push(() => bad.close());
    const err = await bad.kv.range({ key: 'x' }).catch((e: unknown) => e);
    expect(hasCode(translateEtcdError('get', err), 'E_ETCD_AUTH'), String(err)).toBe(true);
  });

  it('a watch from a compacted revision ends with the compact revision (E_ETCD_COMPACTED)', async () => {
    const etcd = await startEtcd();
    cleanup.push(() => etcd.stop());
    const prefix = etcd.prefix('compact');
    const client = new EtcdClient({ endpoints: etcd.endpoints, requestTimeoutMs: 5000 });
    cleanup.push(() => client.close());
    let rev = '0';
    for (let i = 0; i < 5; i++)
      rev = (await client.kv.put({ key: `${prefix}/k`, value: String(i) })).header.revision;
    await etcd.etcdctl(['compact', rev]);
    const fatal = new Promise<Error>((resolve) =>
      client.watch({
        key: `${prefix}/k`,
        startRevision: '2',
        onResponse: () => {},
        onFatal: resolve,
      }),
    );
    const err = await fatal;
    expect(err.message).toContain(`compact revision ${rev}`);
    expect(hasCode(translateEtcdError('watch', err), 'E_ETCD_COMPACTED')).toBe(true);
    // From the current revision the same watch delivers.
    const got: WatchResponse[] = [];
    client.watch({
      key: `${prefix}/k`,
      startRevision: String(BigInt(rev) + 1n),
      onResponse: (r) => got.push(r),
      onFatal: () => {},
    });
    await sleep(200);
    await client.kv.put({ key: `${prefix}/k`, value: 'x' });
    await waitFor('the event', async () => got.length === 1, 5000, 20);
    expect(got[0]!.lastRevision).toBe(String(BigInt(rev) + 1n));
  });

  it('a watch answer over the line bound ends the watch as an overflow (re-list), not a resume loop', async () => {
    const etcd = await startEtcd();
    cleanup.push(() => etcd.stop());
    const prefix = etcd.prefix('big');
    const client = new EtcdClient({ endpoints: etcd.endpoints, requestTimeoutMs: 5000 });
    cleanup.push(() => client.close());
    const first = (await client.kv.put({ key: `${prefix}/k`, value: 'small' })).header.revision;
    for (let i = 0; i < 3; i++)
      await client.kv.put({ key: `${prefix}/k`, value: 'x'.repeat(200_000) });
    let responses = 0;
    const fatal = new Promise<Error>((resolve) =>
      client.watch({
        key: `${prefix}/k`,
        startRevision: first,
        maxLineBytes: 256 << 10,
        onResponse: () => responses++,
        onFatal: resolve,
      }),
    );
    const err = await fatal;
    expect(err.message).toMatch(/too large/);
    const w = translateEtcdError('watch', err);
    expect(hasCode(w, 'E_ETCD_COMPACTED')).toBe(true);
    expect(w.details?.['overflow']).toBe(true);
    expect(responses).toBe(0);
  });

  it('require-leader reaches etcd: a member without a leader refuses at once', async () => {
    // A two-member cluster; the second member is then killed, so the first has no leader.
    const port = 23000 + Math.floor(Math.random() * 5000);
    const url = (i: number): string => `http://127.0.0.1:${port + i}`;
    const cluster = `m0=${url(1)},m1=${url(3)}`;
    const members = [0, 1].map((m) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'weft-etcd-noleader-'));
      const child = spawnTracked('etcd', [
        '--name',
        `m${m}`,
        '--data-dir',
        dataDir,
        '--listen-client-urls',
        url(2 * m),
        '--advertise-client-urls',
        url(2 * m),
        '--listen-peer-urls',
        url(2 * m + 1),
        '--initial-advertise-peer-urls',
        url(2 * m + 1),
        '--initial-cluster',
        cluster,
        '--logger=zap',
        '--log-level',
        'error',
      ]);
      child.stdout?.resume();
      child.stderr?.resume();
      cleanup.push(async () => {
        await stopChild(child);
        rmSync(dataDir, { recursive: true, force: true });
      });
      return child;
    });
    const endpoint = url(0);
    const probe = new EtcdClient({ endpoints: [endpoint], requestTimeoutMs: 1000 });
    cleanup.push(() => probe.close());
    await waitFor(
      'the cluster answers',
      async () =>
        await probe.kv.range({ key: 'x' }).then(
          () => true,
          () => false,
        ),
      20_000,
      100,
    );
    await stopChild(members[1]!, 0);
    await waitFor(
      'the survivor has no leader',
      async () =>
        /no leader/.test(String(await probe.kv.range({ key: 'x' }).catch((e: unknown) => e))),
      15_000,
      200,
    );
    const client = new EtcdClient({ endpoints: [endpoint], requestTimeoutMs: 3000 });
    cleanup.push(() => client.close());
    const t0 = performance.now();
    const err = await client.kv.range({ key: 'x' }).catch((e: unknown) => e);
    const ms = performance.now() - t0;
    expect(err).toBeInstanceOf(EtcdRequestError);
    expect(String(err)).toMatch(/no leader/);
    expect(ms).toBeLessThan(1500);
    // The same request without the header is not refused: it waits for a leader until the deadline.
    const plain = await new Promise<string>((resolve) => {
      const req = http.request(
        `${endpoint}/v3/kv/range`,
        { method: 'POST', headers: { 'content-type': 'application/json' } },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(body));
        },
      );
      req.setTimeout(2000, () => {
        req.destroy();
        resolve('timeout');
      });
      req.on('error', () => resolve('timeout'));
      req.end(JSON.stringify({ key: Buffer.from('x').toString('base64') }));
    });
    expect(plain).not.toMatch(/no leader/);
  });

  it('an abort ends the request; close() ends the watches and connections', async () => {
    const etcd = await startEtcd();
    cleanup.push(() => etcd.stop());
    const client = new EtcdClient({ endpoints: etcd.endpoints, requestTimeoutMs: 5000 });
    const ac = new AbortController();
    ac.abort();
    await expect(client.kv.range({ key: 'x' }, { signal: ac.signal })).rejects.toBeInstanceOf(
      AbortedError,
    );
    let fatal = false;
    client.watch({
      key: 'x',
      startRevision: '1',
      onResponse: () => {},
      onFatal: () => (fatal = true),
    });
    await sleep(200);
    client.close();
    await expect(client.kv.range({ key: 'x' })).rejects.toThrow(/closed/);
    expect(fatal).toBe(false);
  });
});
