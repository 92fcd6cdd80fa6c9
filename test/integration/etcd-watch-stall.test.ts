/**
 * A watch stream that stalls without closing (an L7 proxy or load balancer in front of etcd whose
 * upstream hangs, keeping the client's connection open and silent), while the member itself answers
 * the watch's liveness probe on another connection. Before, the watch sat on the dead stream for ever
 * and weftd missed every lease change after it (no periodic re-list); now the probe sees a change the
 * stream did not deliver and the watch resumes on a new stream (src/subnet/etcd/watch.ts).
 */
import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { EtcdClient } from '../../src/subnet/etcd/client.js';
import type { WatchResponse } from '../../src/subnet/etcd/watch.js';
import { startEtcd } from '../helpers/etcd.js';
import { sleep, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('etcd', 'etcdctl');
useLeakCheck();

describe.skipIf(!runnable)('etcd watch behind a stalling proxy', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('a watch stream that stops delivering is noticed and resumed', async () => {
    const etcd = await startEtcd();
    cleanup.push(() => etcd.stop());
    const up = new URL(etcd.endpoints[0]!);
    const streams: http.IncomingMessage[] = [];
    const server = http.createServer((req, res) => {
      const fwd = http.request(
        {
          host: up.hostname,
          port: up.port,
          path: req.url,
          method: req.method,
          headers: req.headers,
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
          if (req.url === '/v3/watch') streams.push(r);
        },
      );
      fwd.on('error', () => res.destroy());
      req.pipe(fwd);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(
      () =>
        new Promise<void>((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
    );
    const client = new EtcdClient({
      endpoints: [`http://127.0.0.1:${(server.address() as { port: number }).port}`],
      requestTimeoutMs: 3000,
    });
    cleanup.push(() => client.close());
    const prefix = etcd.prefix('stall');
    const got: WatchResponse[] = [];
    const w = client.watch({
      key: `${prefix}/`,
      rangeEnd: `${prefix}0`,
      startRevision: '1',
      onResponse: (r) => got.push(r),
      onFatal: () => {},
    });
    cleanup.push(() => w.close());
    await waitFor('the watch is open', async () => streams.length === 1, 5000, 20);
    await etcd.etcdctl(['put', `${prefix}/a`, '1']);
    await waitFor('first event', async () => got.length === 1, 5000, 20);
    streams[0]!.unpipe(); // the proxy stops forwarding this stream, and keeps it open
    streams[0]!.pause();
    await etcd.etcdctl(['put', `${prefix}/b`, '2']);
    await sleep(500);
    // Noticed within two probes plus WATCH_STALL_CHECK_MS at most.
    await waitFor('the second event arrives', async () => got.length >= 2, 30_000, 100);
    expect(streams.length).toBe(2);
    expect(got[1]!.events[0]!.kv.value?.toString()).toBe('2');
  }, 60_000);
});
