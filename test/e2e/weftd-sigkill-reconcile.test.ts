/**
 * weftd SIGKILLed in the middle of its first full reconcile of 1500 peers (vxlan: a neighbour, an FDB
 * entry and a route each, streamed to the kernel peer by peer), then restarted: the restarted weftd
 * must converge to exactly one complete set per peer — as many routes as neighbours as FDB entries on
 * the device, no half-programmed peer left — without losing what was already there.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { nsRun, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import {
  REPO,
  restartWeftd,
  startWeftd,
  useCluster,
  vxlanDevice,
  waitReady,
  type Cluster,
} from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'nft');
useLeakCheck();

const PEERS = 1500;

/** Writes PEERS fake peer leases (vxlan, VNI 1) in transactions of 100, from inside the underlay. */
async function writePeers(c: Cluster): Promise<void> {
  const script = join(c.tmp, 'peers.mjs');
  writeFileSync(
    script,
    `import { EtcdClient } from ${JSON.stringify(join(REPO, 'dist/subnet/etcd/client.js'))};
const client = new EtcdClient({ endpoints: ${JSON.stringify(c.etcd.endpoints)}, requestTimeoutMs: 10000 });
const hex = (n) => n.toString(16).padStart(2, '0');
let puts = [];
for (let i = 0; i < ${PEERS}; i++) {
  const sub = '10.' + (6 + Math.floor(i / 256)) + '.' + (i % 256) + '.0-24';
  const publicIp = '198.19.' + (16 + Math.floor(i / 250)) + '.' + (1 + (i % 250));
  const mac = '02:aa:00:' + hex(i >> 8) + ':' + hex(i & 255) + ':01';
  puts.push({ put: { key: ${JSON.stringify(`${c.prefix}/subnets/`)} + sub, value: JSON.stringify({
    PublicIP: publicIp, PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: mac } }) } });
  if (puts.length === 100) { await client.kv.txn({ compare: [], success: puts }); puts = []; }
}
if (puts.length) await client.kv.txn({ compare: [], success: puts });
client.close();
`,
  );
  await nsRun(c.topo.underlayNetns, process.execPath, [script], { timeoutMs: 60_000 });
}

/** Lines of `args`' output that contain `match`. */
async function count(ns: string, args: readonly string[], match: string): Promise<number> {
  const out = (await nsRun(ns, args[0]!, args.slice(1), { timeoutMs: 30_000 })).stdout;
  return out.split('\n').filter((l) => l.includes(match)).length;
}

describe.skipIf(!runnable)('weftd SIGKILLed in the middle of a full reconcile', () => {
  // A /8 network so that 1500 /24 subnets fit beside ours.
  const config = { Network: '10.0.0.0/8', SubnetLen: 24, Backend: { Type: 'vxlan' } };
  const setup = useCluster(1, config, [], 'config');
  beforeAll(() => writePeers(setup.c), 120_000);

  it('the restart leaves exactly one complete set of entries per peer', async () => {
    const { c } = setup;
    const host = c.topo.hosts[0]!;
    let w = startWeftd(c, host);
    // Killed as soon as it starts programming peers: after the lease, during the reconcile.
    await waitFor(
      'weftd to acquire its lease',
      () => w.logs.includes('"lease acquired"'),
      30_000,
      5,
    );
    await waitFor(
      'the first peer entries in the kernel',
      async () => (await count(host.netns, ['ip', 'route', 'show'], 'onlink')) > 5,
      30_000,
      20,
    );
    w.child.kill('SIGKILL');
    await waitFor('weftd to die', () => w.child.exitCode !== null || w.child.signalCode !== null);
    const dev = (await vxlanDevice(host.netns))!;
    const partial = await count(host.netns, ['ip', 'route', 'show', 'dev', dev], 'via');
    w = restartWeftd(c, w);
    await waitReady(w, 60_000);
    const full = async (): Promise<number[]> => [
      await count(host.netns, ['ip', 'route', 'show', 'dev', dev], 'via'),
      await count(host.netns, ['ip', 'neigh', 'show', 'dev', dev], 'lladdr'),
      await count(host.netns, ['bridge', 'fdb', 'show', 'dev', dev], ' dst '),
    ];
    await waitFor(
      `${PEERS} routes, neighbours and FDB entries on ${dev}`,
      async () => (await full()).every((n) => n === PEERS),
      60_000,
      500,
    );
    expect(await full()).toEqual([PEERS, PEERS, PEERS]);
    expect(partial).toBeLessThanOrEqual(PEERS);
  }, 180_000);
});
