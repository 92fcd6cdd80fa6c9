/**
 * weftctl when etcd fails part-way through a command: a real etcd on 127.0.0.1 behind a small HTTP
 * proxy in this test that passes some of the gateway's calls and holds others unanswered (an etcd that
 * froze, or a partition, after the command's first requests). Every command must end within a bound
 * with exit 4 and a JSON error document, never a hang and never a partial table shown as complete.
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

/** Forwards every call to etcd except those whose path matches `hold`, which never get an answer. */
async function holdingProxy(
  target: string,
  hold: RegExp,
): Promise<{ endpoint: string; held: () => number; close: () => Promise<void> }> {
  const up = new URL(target);
  let held = 0;
  const server = http.createServer((req, res) => {
    if (hold.test(req.url ?? '')) {
      held++;
      req.resume();
      return;
    }
    const fwd = http.request(
      { host: up.hostname, port: up.port, path: req.url, method: req.method, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
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
    const proxy = await holdingProxy(etcd.endpoints[0]!, /timetolive/);
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
          {
            env: {},
            stdoutIsTty: false,
            stderrIsTty: false,
            writeErr: () => {},
            readStdin: async () => '',
          },
        );
        const ms = performance.now() - t0;
        const doc = JSON.parse(r.stdout) as Record<string, unknown>;
        // before: exit 0 (leases) after 4 s, every expiry unknown; the lookups all were tried
        expect(r.exitCode, `${args[0]}: ${r.stdout.slice(0, 300)}`).toBe(4);
        expect(doc['ok']).toBe(false);
        if (args[0] === 'leases')
          expect(doc['error']).toMatchObject({ code: 'E_ETCD_UNAVAILABLE' });
        else expect(doc['etcd'] ?? doc['checks']).toBeDefined();
        expect(ms).toBeLessThan(2500);
      }
      expect(proxy.held()).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });
});
