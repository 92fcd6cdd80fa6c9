/**
 * The wireguard backend on the generic peer loop (backend/peer-loop.ts) with its WireGuard sink
 * (backend-wireguard/wg-sink.ts), over an in-memory peer table: incremental events program only the
 * touched peer, an unchanged peer is never re-set (that would reset a roamed endpoint), a changed lease
 * is re-set in place, a removed one goes after the grace, a full reconcile deletes peers no lease names
 * and re-adds one the device lost — each new peer with a handshake started at once.
 */
import { useStateDir } from '../helpers/state-dir.js';
import { describe, expect, it } from 'vitest';
import type { ReconcileReport } from '../../src/backend/peer-loop.js';
import {
  wireguardBackendFactory,
  type WireguardNetwork,
} from '../../src/backend-wireguard/index.js';
import type { Lease } from '../../src/lease/lease.js';
import { nullLogger } from '../../src/log/logger.js';
import {
  MemorySubnets,
  testNetworkConfig,
  testUplink,
} from '../integration/backend-memory-subnets.js';
import { MemoryWgDevice } from '../fakes/memory-wg-device.js';
import { FakeNetlink } from '../fakes/fake-netlink.js';

const { dir } = useStateDir('weft-wgloop-unit-');

const tick = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));
const KEY = (n: number): string => Buffer.alloc(32, n).toString('base64');
const OURS = '198.18.0.1';

function peer(n: number, publicIp = `198.18.0.${n}`, key = KEY(n)): Lease {
  return {
    key: `10.5.${n}.0-24`,
    subnet: `10.5.${n}.0/24`,
    subnet6: null,
    attrs: {
      publicIp,
      publicIpv6: null,
      backendType: 'wireguard',
      backendData: { PublicKey: key },
    },
    expiration: null,
  };
}

async function start(removalGraceMs: number): Promise<{
  subnets: MemorySubnets;
  dev: MemoryWgDevice;
  network: WireguardNetwork;
  reports: ReconcileReport[];
  stop: () => Promise<void>;
}> {
  const fake = new FakeNetlink();
  const eth0 = fake.addLink('eth0');
  fake.addLink('weft-wg', { kind: 'tun', up: false });
  fake.addrs.push({ index: eth0.index, cidr: `${OURS}/24` });
  const config = testNetworkConfig('wireguard');
  const subnets = new MemorySubnets(config);
  subnets.put(peer(2));
  const uplink = testUplink({ index: eth0.index });
  const devs: MemoryWgDevice[] = [];
  const reports: ReconcileReport[] = [];
  const backend = wireguardBackendFactory({
    netlink: fake,
    resyncMs: 3_600_000,
    removalGraceMs,
    observer: { reconciled: (r) => reports.push(r) },
    startDevice: (req) => {
      const d = new MemoryWgDevice(req);
      devs.push(d);
      return d.asDevice();
    },
  })({ subnets: subnets.manager(), uplink, log: nullLogger, stateDir: dir });
  const ac = new AbortController();
  const network = (await backend.registerNetwork(config, {}, ac.signal)) as WireguardNetwork;
  const done = network.run(ac.signal);
  await tick();
  return {
    subnets,
    dev: devs[0]!,
    network,
    reports,
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}

describe('wireguard backend on the generic peer loop', () => {
  it('programs, re-sets only changed peers, removes after the grace, and reconciles', async () => {
    const { subnets, dev, network, reports, stop } = await start(50);
    try {
      expect(dev.peerKeys()).toEqual([KEY(2)]);
      expect(dev.initiated).toEqual([KEY(2)]);
      const sets = dev.sets;

      // a new peer: only it is set, with a handshake at once
      subnets.put(peer(3));
      await tick();
      expect(dev.peerKeys().sort()).toEqual([KEY(2), KEY(3)].sort());
      expect(dev.sets).toBe(sets + 1);
      expect(dev.initiated).toEqual([KEY(2), KEY(3)]);

      // the same lease again: nothing re-set; a new endpoint: re-set in place, no new handshake
      subnets.put(peer(3));
      await tick();
      expect(dev.sets).toBe(sets + 1);
      subnets.put(peer(3, '198.18.0.33'));
      await tick();
      expect(dev.sets).toBe(sets + 2);
      expect(dev.peers.get(KEY(3))?.endpoint).toEqual({ address: '198.18.0.33', port: 51820 });
      expect(dev.initiated).toEqual([KEY(2), KEY(3)]);

      // a full reconcile of an unchanged device programs and deletes nothing
      await network.reconcileNow();
      expect(reports.at(-1)).toMatchObject({ peers: 2, programmed: 0, deleted: 0, failures: 0 });

      // removed: kept through the grace (the same lease coming straight back touches nothing)
      subnets.remove(peer(3).key);
      await tick(10);
      expect(dev.peerKeys()).toContain(KEY(3));
      subnets.put(peer(3, '198.18.0.33'));
      await tick(100);
      expect(dev.peerKeys()).toContain(KEY(3));
      expect(dev.removes).toBe(0);
      subnets.remove(peer(3).key);
      await tick(150);
      expect(dev.peerKeys()).toEqual([KEY(2)]);
      expect(dev.removes).toBe(1);

      // a peer no lease names is deleted, one the device lost is re-added (with a handshake)
      dev.setPeer({ publicKey: KEY(9), allowedIps: ['10.5.9.0/24'] });
      dev.removePeer(KEY(2));
      await network.reconcileNow();
      expect(dev.peerKeys()).toEqual([KEY(2)]);
      expect(reports.at(-1)).toMatchObject({ peers: 1, programmed: 1, deleted: 1 });
      // the planning is part of the reconcile's time, and so are its other phases
      const r = reports.at(-1)!;
      expect(r.planMs).toBeGreaterThanOrEqual(0);
      expect(r.planMs).toBeLessThanOrEqual(r.ms);
      for (const phase of [r.readyMs, r.readMs, r.tailMs]) expect(phase).toBeGreaterThanOrEqual(0);
      expect(r.readMs).toBe(0); // this sink does not stream, so nothing is read before planning
      expect(r.readyMs + r.readMs + r.planMs + r.tailMs).toBeLessThanOrEqual(r.ms + 1e-6);
      expect(dev.initiated.at(-1)).toBe(KEY(2));

      // a newcomer with the live peer's key is refused; the live peer keeps it
      subnets.put(peer(4, '198.18.0.44', KEY(2)));
      await tick();
      expect(dev.peers.get(KEY(2))?.endpoint?.address).toBe('198.18.0.2');
      expect(dev.peerKeys()).toEqual([KEY(2)]);
    } finally {
      await stop();
    }
  });
});

describe('wireguard backend whose start failed', () => {
  it('closes the device it started and never recreates it (no engine outlives the failed start)', async () => {
    const fake = new FakeNetlink();
    const eth0 = fake.addLink('eth0');
    fake.addrs.push({ index: eth0.index, cidr: `${OURS}/24` }); // no weft-wg link: configuring it fails
    const config = testNetworkConfig('wireguard');
    const devs: MemoryWgDevice[] = [];
    const backend = wireguardBackendFactory({
      netlink: fake,
      startDevice: (req) => {
        const d = new MemoryWgDevice(req);
        devs.push(d);
        return d.asDevice();
      },
    })({
      subnets: new MemorySubnets(config).manager(),
      uplink: testUplink({ index: eth0.index }),
      log: nullLogger,
      stateDir: dir,
    });
    await expect(
      backend.registerNetwork(config, {}, new AbortController().signal),
    ).rejects.toMatchObject({ code: 'E_INTERFACE' });
    expect(devs.map((d) => d.closed)).toEqual([true]);
    // its engine's last error arrives after the close: the TUN reads as deleted
    devs[0]!.emit(
      'error',
      Object.assign(new Error('read EBADFD'), { code: 'EBADFD', syscall: 'read' }),
    );
    await tick();
    expect(devs).toHaveLength(1);
  });
});
