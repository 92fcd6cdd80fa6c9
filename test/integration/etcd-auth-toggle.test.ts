/**
 * etcd auth switched on and off under a running client (src/subnet/etcd/http-transport.ts):
 *  - credentials given while etcd's auth is disabled: etcd refuses to authenticate ("authentication is
 *    not enabled") and, before, every call failed with it for ever (weftd waited "for etcd" at start);
 *    etcd's Go client, and so flannel, then goes on without a token. Now weft does too;
 *  - auth enabled meanwhile: the next call, and the open watch, authenticate and go on;
 *  - auth disabled again: calls go on;
 *  - without credentials while auth is on: E_ETCD_AUTH naming the flags, not an outage; back to
 *    working once auth is disabled.
 */
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { EtcdClient, translateEtcdError } from '../../src/subnet/etcd/client.js';
import type { WatchResponse } from '../../src/subnet/etcd/watch.js';
import { startEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('etcd', 'etcdctl');
useLeakCheck();

describe.skipIf(!runnable)('etcd auth toggled under a running client', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('credentials work whether etcd auth is enabled or not, and follow it being toggled', async () => {
    const etcd = await startEtcd();
    cleanup.push(() => etcd.stop());
    const prefix = etcd.prefix('authtoggle');
    const root = ['--user', 'root:weft-secret'];
    const client = new EtcdClient({
      endpoints: etcd.endpoints,
      requestTimeoutMs: 3000,
      auth: { username: 'root', password: 'weft-secret' },
    });
    cleanup.push(() => client.close());
    const bare = new EtcdClient({ endpoints: etcd.endpoints, requestTimeoutMs: 3000 });
    cleanup.push(() => bare.close());
    const value = async (c: EtcdClient, key: string): Promise<string | undefined> =>
      (await c.kv.range({ key })).kvs[0]?.value?.toString();

    // Auth disabled: the credentials are not needed, and not in the way.
    await client.kv.put({ key: `${prefix}/a`, value: '1' });
    expect(await value(client, `${prefix}/a`)).toBe('1');
    const got: WatchResponse[] = [];
    let fatal: Error | null = null;
    const w = client.watch({
      key: `${prefix}/w/`,
      rangeEnd: `${prefix}/w0`,
      startRevision: '1',
      onResponse: (r) => got.push(r),
      onFatal: (e) => (fatal = e),
    });
    cleanup.push(() => w.close());
    await client.kv.put({ key: `${prefix}/w/1`, value: 'before' });
    await waitFor('the first watch event', async () => got.length === 1, 5000, 20);

    // Auth enabled while the client runs without a token.
    await etcd.etcdctl(['user', 'add', 'root', '--new-user-password', 'weft-secret']);
    await etcd.etcdctl(['auth', 'enable']);
    expect(await value(client, `${prefix}/a`)).toBe('1');
    const err = await bare.kv.range({ key: `${prefix}/a` }).catch((e: unknown) => e);
    const authErr = translateEtcdError('get', err);
    expect(hasCode(authErr, 'E_ETCD_AUTH'), String(err)).toBe(true);
    expect(authErr.message).toMatch(/--etcd-username\/--etcd-password/);
    await etcd.etcdctl([...root, 'put', `${prefix}/w/2`, 'during']);
    await waitFor('the watch event while auth is on', async () => got.length === 2, 15_000, 50);
    expect(fatal).toBeNull();

    // Auth disabled again.
    await etcd.etcdctl([...root, 'auth', 'disable']);
    await client.kv.put({ key: `${prefix}/a`, value: '2' });
    expect(await value(bare, `${prefix}/a`)).toBe('2');
    await etcd.etcdctl(['put', `${prefix}/w/3`, 'after']);
    await waitFor('the watch event after auth is off', async () => got.length === 3, 15_000, 50);
    expect(fatal).toBeNull();
    expect(got.map((r) => r.events[0]!.kv.value?.toString())).toEqual([
      'before',
      'during',
      'after',
    ]);

    // A client started with credentials after auth was disabled works at once.
    const late = new EtcdClient({
      endpoints: etcd.endpoints,
      requestTimeoutMs: 3000,
      auth: { username: 'root', password: 'weft-secret' },
    });
    cleanup.push(() => late.close());
    expect(await value(late, `${prefix}/a`)).toBe('2');
  }, 60_000);

  it('authenticates through another member when the first one is down or frozen', async () => {
    // Before, the authentication went to the current member without failover and without marking
    // it failed: with that member down, every call of a client without a token (weftd at start,
    // weftctl) failed on it again, for as long as it stayed down.
    const etcd = await startEtcd({ etcdctlArgs: ['--user', 'root:weft-secret'] });
    cleanup.push(() => etcd.stop());
    await etcd.etcdctl(['user', 'add', 'root', '--new-user-password', 'weft-secret']);
    await etcd.etcdctl(['auth', 'enable']);
    const key = `${etcd.prefix('authfail')}/k`;
    await etcd.etcdctl(['put', key, 'v']);
    const refused = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(port));
      });
    });
    const held: net.Socket[] = [];
    const frozen = net.createServer((sock) => void held.push(sock));
    await new Promise<void>((r) => frozen.listen(0, '127.0.0.1', r));
    cleanup.push(
      () =>
        new Promise<void>((r) => {
          for (const sock of held) sock.destroy();
          frozen.close(() => r());
        }),
    );
    for (const bad of [refused, (frozen.address() as net.AddressInfo).port]) {
      const client = new EtcdClient({
        endpoints: [`http://127.0.0.1:${bad}`, ...etcd.endpoints],
        requestTimeoutMs: 3000,
        auth: { username: 'root', password: 'weft-secret' },
      });
      cleanup.push(() => client.close());
      const [first, real] = client.transport.endpoints;
      client.transport.markFailed(real!); // start on the bad member
      expect(client.transport.pick()).toBe(first);
      const r = await client.kv.range({ key });
      expect(r.kvs[0]?.value?.toString(), `bad member on port ${bad}`).toBe('v');
    }
  }, 30_000);
});
