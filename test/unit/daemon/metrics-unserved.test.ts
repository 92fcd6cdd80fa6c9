/**
 * weftd's metrics never load prom-client (10-12 MiB of resident memory imported alone; src/daemon/prom.ts writes
 * the exposition itself): with no --healthz-port / --metrics-port they go nowhere, with one they are
 * served. Checked in a fresh Node process with weftd's whole module graph.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createDaemonMetrics } from '../../../src/daemon/metrics.js';

const probe = (served: boolean): { loaded: boolean } =>
  JSON.parse(
    execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        // weftd's whole module graph (every backend, wireguard's metrics included), wired as main does
        `const { createDaemonMetrics } = await import('./src/daemon/metrics.ts');
         const { defaultBackends } = await import('./src/daemon/default-backends.ts');
         const { createRequire } = await import('node:module');
         const m = createDaemonMetrics({ served: ${served}, processMetrics: false });
         defaultBackends({ resyncPeriodSec: 60, metrics: m });
         m.setPeers('vxlan', 3); m.observeReconcile('vxlan', 0.1); m.setReady(true);
         const cache = createRequire(import.meta.url).cache;
         console.log(JSON.stringify({ loaded: Object.keys(cache).some((k) => k.includes('/prom-client/')) }));`,
      ],
      { encoding: 'utf8' },
    ),
  ) as { loaded: boolean };

describe('daemon metrics without a port', () => {
  it('never loads prom-client, served or not', () => {
    expect(probe(false)).toEqual({ loaded: false });
    expect(probe(true)).toEqual({ loaded: false });
  });

  it('accepts every report and refuses to hand out a registry', () => {
    const m = createDaemonMetrics({ served: false });
    m.setLeaseState('acquired', new Date());
    m.etcdError('get');
    m.firewallApplied('start');
    m.watchNetlink(() => ({ requests: 1, errors: 0, timeouts: 0, socketErrors: 0, inFlight: 0 }));
    expect(() => m.registry).toThrow(/not served/);
  });

  it('serves the same metric names as before when a port is set', async () => {
    const text = await createDaemonMetrics({ processMetrics: false }).registry.metrics();
    for (const name of ['weft_peers', 'weft_netlink_requests_total', 'weft_ready'])
      expect(text).toContain(`# TYPE ${name}`);
  });
});
