/**
 * weftctl when etcd fails part-way through a command: a real etcd on 127.0.0.1 behind a small HTTP
 * proxy in this test that passes some of the gateway's calls and holds others unanswered (an etcd that
 * froze, or a partition, after the command's first requests). Every command must end within a bound
 * with exit 4 and a JSON error document, never a hang and never a partial table shown as complete;
 * a compaction between two pages of a listing is no failure at all; an endpoint whose pages never
 * advance ends the listing at once.
 * runCli runs in-process; nothing touches the kernel.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run.js';
import { startEtcd, type EtcdFixture } from '../helpers/etcd.js';
import { etcdWriter } from '../helpers/etcd-writer.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('etcd', 'etcdctl');
useLeakCheck();

/**
 * Forwards every call to etcd, except that calls whose path matches `hold` never get an answer, and
 * `before` runs (and is awaited) ahead of forwarding each call.
 */
async function faultProxy(
  target: string,
  o: { hold?: RegExp; before?: (path: string, body: Buffer) => Promise<void> },
): Promise<{ endpoint: string; held: () => number; close: () => Promise<void> }> {
  const up = new URL(target);
  let held = 0;
  const server = http.createServer((req, res) => {
    if (o.hold?.test(req.url ?? '')) {
      held++;
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      void (o.before?.(req.url ?? '', body) ?? Promise.resolve()).then(() => {
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
          },
        );
        fwd.on('error', () => res.destroy());
        fwd.end(body);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    held: () => held,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const io = {
  env: {},
  stdoutIsTty: false,
  stderrIsTty: false,
  writeErr: () => {},
  readStdin: async () => '',
};

describe.skipIf(!runnable)('weftctl with etcd failing part-way', () => {
  let etcd: EtcdFixture;
  let prefix: string;
  beforeAll(async () => {
    etcd = await startEtcd();
    prefix = etcd.prefix('cli-faults');
    // 64 hosts, one etcd lease each: 4 batches of TTL lookups
    const client = etcdWriter(etcd.endpoints);
    try {
      await client.put(
        `${prefix}/config`,
        JSON.stringify({ Network: '10.8.0.0/16', Backend: { Type: 'host-gw' } }),
      );
      for (let n = 0; n < 64; n++) {
        const lease = await client.grant(600);
        await client.put(
          `${prefix}/subnets/10.8.${n + 1}.0-24`,
          JSON.stringify({ PublicIP: `198.18.0.${n + 1}`, BackendType: 'host-gw' }),
          lease,
        );
      }
    } finally {
      client.close();
    }
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('etcd stops answering after the listing: leases, status and doctor end in about one --timeout with exit 4', async () => {
    const proxy = await faultProxy(etcd.endpoints[0]!, { hold: /timetolive/ });
    try {
      for (const args of [['leases'], ['status'], ['doctor', '--no-probe']]) {
        const t0 = performance.now();
        const r = await runCli(
          [
            ...args,
            '--json',
            `--etcd-endpoints=${proxy.endpoint}`,
            `--etcd-prefix=${prefix}`,
            '--subnet-file=/nonexistent/subnet.env',
            '--healthz-port=0',
            '--timeout=1',
          ],
          io,
        );
        const ms = performance.now() - t0;
        const doc = JSON.parse(r.stdout) as Record<string, unknown>;
        // before: exit 0 (leases) after 4 s, every expiry unknown; the lookups all were tried
        expect(r.exitCode, `${args[0]}: ${r.stdout.slice(0, 300)}`).toBe(4);
        expect(doc['ok']).toBe(false);
        if (args[0] === 'leases')
          expect(doc['error']).toMatchObject({
            code: 'E_ETCD_UNAVAILABLE',
            // whole milliseconds (was "no answer within 999.97… ms")
            message: expect.stringMatching(/: no answer within 1000 ms$/),
          });
        else expect(doc['etcd'] ?? doc['checks']).toBeDefined();
        expect(ms).toBeLessThan(2500);
      }
      expect(proxy.held()).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });
  it('a compaction between two pages of the listing: leases starts over and lists every key (exit 0)', async () => {
    const big = etcd.prefix('cli-compact');
    const client = etcdWriter(etcd.endpoints);
    let compacted = '';
    // 600 reservations: two pages of the registry's listing (500 keys each)
    const proxy = await faultProxy(etcd.endpoints[0]!, {
      before: async (path, body) => {
        if (compacted || !path.endsWith('/kv/range') || !('revision' in JSON.parse(String(body))))
          return;
        // the second page asks for the first one's revision: a write, and a compaction up to it
        await client.put(`${big}-other`, 'x');
        const rev = (await client.client.kv.range({ key: `${big}-other` })).header.revision;
        await etcd.etcdctl(['compact', rev]);
        compacted = rev;
      },
    });
    try {
      for (let b = 0; b < 6; b++)
        await client.putAll(
          Array.from({ length: 100 }, (_, i) => ({
            key: `${big}/subnets/10.${9 + b}.${i}.0-24`,
            value: JSON.stringify({ PublicIP: `198.18.${b}.${i + 1}`, BackendType: 'host-gw' }),
          })),
        );
      const r = await runCli(
        ['leases', '--json', `--etcd-endpoints=${proxy.endpoint}`, `--etcd-prefix=${big}`],
        io,
      );
      expect(compacted).not.toBe('');
      // before: exit 4, "etcd list subnets: etcdserver: mvcc: required revision has been compacted"
      expect(r.exitCode, r.stdout.slice(0, 300)).toBe(0);
      const doc = JSON.parse(r.stdout) as { revision: string; leases: unknown[] };
      expect(doc.leases).toHaveLength(600);
      expect(BigInt(doc.revision)).toBeGreaterThanOrEqual(BigInt(compacted));
    } finally {
      await proxy.close();
      client.close();
    }
  });
  it('an endpoint that answers every page with the same keys and "more": exit 4 at once, no endless paging', async () => {
    let ranges = 0;
    const key = Buffer.from('/coreos.com/network/subnets/10.1.1.0-24').toString('base64');
    const page = JSON.stringify({
      header: { revision: '5' },
      kvs: [{ key, value: Buffer.from('{}').toString('base64'), mod_revision: '3' }],
      more: true,
      count: '2',
    });
    const broken = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url?.endsWith('/kv/range')) ranges++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(page);
      });
    });
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = broken.address() as { port: number };
      const r = await Promise.race([
        runCli(['leases', '--json', `--etcd-endpoints=http://127.0.0.1:${port}`], io),
        new Promise<null>((resolve) => setTimeout(() => resolve(null), 5000)),
      ]);
      // before: tens of thousands of requests a second, for ever
      expect(r, `still paging after 5 s (${ranges} requests)`).not.toBeNull();
      expect(r!.exitCode).toBe(4);
      expect(JSON.parse(r!.stdout)).toMatchObject({
        ok: false,
        error: { code: 'E_ETCD_UNAVAILABLE', message: expect.stringMatching(/does not advance/) },
      });
      expect(ranges).toBe(2);
    } finally {
      broken.closeAllConnections();
      await new Promise((resolve) => broken.close(resolve));
    }
  });
  it('a slow etcd (50 ms a call): 640 leases with their TTLs in about ten round trips, not forty', async () => {
    const slow = etcd.prefix('cli-slow');
    const client = etcdWriter(etcd.endpoints);
    try {
      for (let b = 0; b < 10; b++)
        await Promise.all(
          Array.from({ length: 64 }, async (_, i) => {
            const lease = await client.grant(600);
            await client.put(
              `${slow}/subnets/10.${20 + b}.${i}.0-24`,
              JSON.stringify({ PublicIP: `198.18.${b}.${i + 1}`, BackendType: 'host-gw' }),
              lease,
            );
          }),
        );
    } finally {
      client.close();
    }
    const proxy = await faultProxy(etcd.endpoints[0]!, {
      before: (path) =>
        path.endsWith('/timetolive')
          ? new Promise((resolve) => setTimeout(resolve, 50))
          : Promise.resolve(),
    });
    try {
      const t0 = performance.now();
      const r = await runCli(
        ['leases', '--json', `--etcd-endpoints=${proxy.endpoint}`, `--etcd-prefix=${slow}`],
        io,
      );
      const ms = performance.now() - t0;
      expect(r.exitCode).toBe(0);
      const leases = (JSON.parse(r.stdout) as { leases: { expiresInSeconds: number }[] }).leases;
      expect(leases).toHaveLength(640);
      expect(leases.every((l) => l.expiresInSeconds > 500)).toBe(true);
      // 16 at a time: 40 rounds of 50 ms (2 s and more); 64 at a time: 10 (10,000 leases behind a
      // 20 ms etcd: 18.6 s before, 7.8 s now)
      expect(ms).toBeLessThan(1800);
      console.log(`weftctl leases: 640 leases behind a 50 ms etcd in ${ms.toFixed(0)} ms`);
    } finally {
      await proxy.close();
    }
  });
});
