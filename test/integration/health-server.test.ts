/** /healthz, /readyz and /metrics of weftd's health server, on 127.0.0.1 with a kernel-chosen port. */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HEADERS_TIMEOUT_MS,
  MAX_CONNECTIONS,
  startHealthServer,
  type HealthServer,
} from '../../src/daemon/health.js';
import { createDaemonMetrics } from '../../src/daemon/metrics.js';
import { hasCode } from '../../src/errors.js';
import { useLeakCheck } from '../helpers/leaks.js';

useLeakCheck();

describe('health server', () => {
  let srv: HealthServer;
  let ready = false;
  const metrics = createDaemonMetrics();
  const url = (p: string): string => `http://127.0.0.1:${srv.address.port}${p}`;

  beforeAll(async () => {
    srv = await startHealthServer({
      host: '127.0.0.1',
      port: 0,
      isReady: () => ready,
      registry: metrics.registry,
    });
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('a port in use fails naming the step, the address and the flags to change', async () => {
    const err = await startHealthServer({
      host: '127.0.0.1',
      port: srv.address.port,
      isReady: () => ready,
      registry: metrics.registry,
    }).catch((e: unknown) => e);
    expect(hasCode(err, 'E_IO')).toBe(true);
    expect((err as Error).message).toBe(
      `health server: cannot listen on 127.0.0.1:${srv.address.port}: listen EADDRINUSE: address already in use 127.0.0.1:${srv.address.port}; free the port or choose others with --healthz-ip, --healthz-port and --metrics-port`,
    );
  });

  it('/healthz is 200 while running; /readyz is 503 until ready, then 200', async () => {
    const h = await fetch(url('/healthz'));
    expect(h.status).toBe(200);
    expect(await h.text()).toBe('weftd is running\n');
    const r1 = await fetch(url('/readyz'));
    expect(r1.status).toBe(503);
    expect(await r1.text()).toBe('weftd is not ready yet\n');
    ready = true;
    const r2 = await fetch(url('/readyz'), { method: 'HEAD' });
    expect(r2.status).toBe(200);
    expect((await fetch(url('/nope'))).status).toBe(404);
  });

  it('/metrics exposes lease state, peers, netlink, reconcile, renew and etcd counters', async () => {
    metrics.setLeaseState('acquired', new Date(2_000_000_000_000));
    metrics.setPeers('vxlan', 2);
    metrics.watchLeaseManager(() => ({
      renewals: 3,
      renewFailures: 3,
      recreations: 1,
      lostRaces: 0,
      etcdRequests: 42,
    }));
    metrics.watchNetlink(() => ({
      requests: 7,
      errors: 1,
      timeouts: 0,
      socketErrors: 0,
      inFlight: 2,
    }));
    metrics.observeReconcile('vxlan', 0.02);
    metrics.etcdError('get_config');
    metrics.setReady(true);
    const res = await fetch(url('/metrics'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const body = await res.text();
    expect(body).toContain('weft_lease_state{state="acquired"} 1');
    expect(body).toContain('weft_lease_state{state="none"} 0');
    expect(body).toContain('weft_lease_expiration_timestamp_seconds 2000000000');
    expect(body).toContain('weft_peers{backend="vxlan"} 2');
    expect(body).toContain('weft_netlink_requests_total 7');
    expect(body).toContain('weft_netlink_errors_total 1');
    expect(body).toContain('weft_netlink_in_flight 2');
    expect(body).toContain('weft_reconcile_duration_seconds_count{backend="vxlan"} 1');
    expect(body).toContain('weft_lease_renew_failures_total 3');
    expect(body).toContain('weft_lease_renewals_total 3');
    expect(body).toContain('weft_etcd_requests_total 42');
    expect(body).toContain('weft_etcd_errors_total{op="get_config"} 1');
    expect(body).toContain('weft_ready 1');
    expect(body).toContain('weftd_process_resident_memory_bytes');
  });

  it('idle and half-sent connections are closed within the headers timeout; a flood stays bounded and probes get through after it', async () => {
    const port = srv.address.port;
    const open = (first?: string): Promise<{ sock: Socket; closed: Promise<number> }> =>
      new Promise((done, fail) => {
        const sock = connect({ host: '127.0.0.1', port });
        const t0 = Date.now();
        const closed = new Promise<number>((c) => sock.on('close', () => c(Date.now() - t0)));
        sock.on('error', () => {}); // a reset on close is what is expected
        sock.resume(); // read what the server may answer (a 408), or 'close' never comes
        sock.once('connect', () => {
          if (first) sock.write(first);
          done({ sock, closed });
        });
        sock.once('error', fail);
      });
    // One client that never sends, one that stops in the middle of its headers, and a flood beyond the cap.
    const socks = await Promise.all([
      open(),
      open('GET /healthz HTTP/1.1\r\nHost: x\r\n'),
      ...Array.from({ length: MAX_CONNECTIONS + 20 }, () => open()),
    ]);
    try {
      const times = await Promise.all(socks.map((s) => s.closed));
      // Node's defaults kept them for 60 s (headers) and 300 s (request).
      expect(Math.max(...times)).toBeLessThan(HEADERS_TIMEOUT_MS + 3000);
    } finally {
      for (const s of socks) s.sock.destroy();
    }
    expect((await fetch(url('/healthz'))).status).toBe(200);
  }, 20_000);
});
