/**
 * The serial peer loop and the vxlan programmer on a recording fake NetlinkOps: order of programming,
 * undo on failure, dirty → next reconcile, removal, VTEP MAC change, hostile backend data, nothing
 * deleted before the first snapshot, device re-creation on a link event, one peer repaired from an
 * entry event (not a failed one; a full reconcile when events were lost).
 */
import { useStateDir } from '../helpers/state-dir.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { vxlanBackendFactory, type VxlanNetwork } from '../../src/backend-vxlan/index.js';
import type { Lease, LeaseEvent } from '../../src/lease/lease.js';
import { createJsonLogger } from '../../src/log/logger.js';
import type { SubnetManager } from '../../src/subnet/manager.js';
import {
  MemorySubnets,
  testNetworkConfig,
  testUplink,
} from '../integration/backend-memory-subnets.js';
import { FakeNetlink } from '../fakes/fake-netlink.js';

const { dir, machineId } = useStateDir('weft-loop-unit-');

const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));
const vx = (n: number, mac: unknown = `0e:00:00:00:00:${n.toString(16).padStart(2, '0')}`) => ({
  publicIp: `198.18.0.${n}`,
  publicIpv6: null,
  backendType: 'vxlan',
  backendData: { VNI: 1, VtepMAC: mac },
});

describe('peer loop + vxlan programmer (fake netlink)', () => {
  let fake: FakeNetlink;
  let subnets: MemorySubnets;
  let network: VxlanNetwork;
  let ac: AbortController;
  let done: Promise<void>;
  let dev: number;
  const logs: string[] = [];

  async function startWith(manager: SubnetManager): Promise<void> {
    const backend = vxlanBackendFactory({
      netlink: fake,
      resyncMs: 3_600_000,
      removalGraceMs: 0,
      machineIdPath: machineId,
    })({
      subnets: manager,
      uplink: testUplink(),
      log: createJsonLogger({ level: 'debug', write: (l) => logs.push(l) }),
      stateDir: dir,
    });
    ac = new AbortController();
    network = (await backend.registerNetwork(
      testNetworkConfig('vxlan'),
      {},
      ac.signal,
    )) as VxlanNetwork;
    dev = fake.links.get('weft.1')!.index;
    done = network.run(ac.signal);
    await tick();
  }

  beforeEach(() => {
    fake = new FakeNetlink();
    fake.addLink('eth0');
    subnets = new MemorySubnets(testNetworkConfig('vxlan'));
    logs.length = 0;
  });
  afterEach(async () => {
    ac.abort();
    await done;
  });

  it('programs a peer neighbour → FDB → route, and the device before the lease', async () => {
    subnets.put(subnets.leaseFor(2, vx(2)));
    await startWith(subnets.manager());
    expect(fake.calls[0]).toBe('createVxlanLink weft.1');
    expect(network.lease.attrs.backendData).toEqual({ VNI: 1, VtepMAC: network.vtepMacs[4] });
    const peerCalls = fake.calls.filter((c) => /10\.5\.2\.0|0e:00:00:00:00:02/.test(c));
    expect(peerCalls).toEqual([
      'neighReplace 10.5.2.0 0e:00:00:00:00:02',
      'fdbReplace 0e:00:00:00:00:02 198.18.0.2',
      'routeReplace 10.5.2.0/24',
    ]);
    expect(fake.routes.get('254|10.5.2.0/24')).toMatchObject({
      gateway: '10.5.2.0',
      oif: dev,
      onlink: true,
    });
    expect(fake.addrs).toContainEqual({
      index: dev,
      cidr: `${network.lease.subnet!.split('/')[0]}/32`,
    });
  });

  it('undoes neighbour and FDB when the route fails, marks dirty, and the next reconcile retries', async () => {
    fake.failWith = (op, obj) => (op === 'routeReplace' && obj === '10.5.3.0/24' ? 'EINVAL' : null);
    subnets.put(subnets.leaseFor(3, vx(3)));
    await startWith(subnets.manager());
    expect(fake.calls).toContain('neighDelete 10.5.3.0');
    expect(fake.calls).toContain('fdbDelete 0e:00:00:00:00:03 198.18.0.3');
    expect(fake.neighs.size).toBe(0);
    expect(fake.fdb.size).toBe(0);
    expect(logs.some((l) => l.includes('cannot program peer') && l.includes('EINVAL'))).toBe(true);
    fake.failWith = () => null;
    await network.reconcileNow();
    expect(fake.routes.has('254|10.5.3.0/24')).toBe(true);
    expect(fake.neighs.size).toBe(1);
  });

  it('removes a peer on lease removal and follows a VTEP MAC change', async () => {
    subnets.put(subnets.leaseFor(2, vx(2)));
    subnets.put(subnets.leaseFor(4, vx(4)));
    await startWith(subnets.manager());
    expect(fake.routes.size).toBe(2);
    subnets.remove(subnets.leaseFor(4, vx(4)).key);
    await tick();
    expect(fake.routes.has('254|10.5.4.0/24')).toBe(false);
    expect([...fake.neighs.values()].map((n) => n.dst)).toEqual(['10.5.2.0']);
    subnets.put(subnets.leaseFor(2, vx(2, '0e:00:00:00:00:aa')));
    await tick();
    expect([...fake.fdb.values()]).toEqual([
      { ifindex: dev, mac: '0e:00:00:00:00:aa', dst: '198.18.0.2', permanent: true },
    ]);
    expect(fake.neighs.get(`${dev}|10.5.2.0`)?.mac).toBe('0e:00:00:00:00:aa');
  });

  it('skips hostile or foreign leases with a warning and keeps going', async () => {
    subnets.put(subnets.leaseFor(5, vx(5, 'not-a-mac')));
    subnets.put(subnets.leaseFor(6, { ...vx(6), backendData: 'garbage' }));
    subnets.put(subnets.leaseFor(7, { ...vx(7), backendType: 'host-gw' }));
    subnets.put(
      subnets.leaseFor(8, { ...vx(8), backendData: { VNI: 9, VtepMAC: '0e:00:00:00:00:08' } }),
    );
    subnets.put({ ...subnets.leaseFor(9, vx(9)), subnet: '10.99.0.0/24' });
    subnets.put(subnets.leaseFor(10, vx(10)));
    await startWith(subnets.manager());
    expect([...fake.routes.keys()]).toEqual(['254|10.5.10.0/24']);
    expect(logs.filter((l) => l.includes('"level":40')).length).toBeGreaterThanOrEqual(4);
  });

  it('deletes nothing before the first snapshot arrives', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const manager: SubnetManager = {
      ...subnets.manager(),
      watchLeases: (_own: Lease | null, signal: AbortSignal) =>
        (async function* (): AsyncIterable<LeaseEvent[]> {
          await Promise.race([gate, new Promise((r) => signal.addEventListener('abort', r))]);
          if (!signal.aborted) yield [{ kind: 'snapshot', leases: [] }];
        })(),
    };
    await startWith(manager);
    await fake.routeReplace({ dst: '10.5.50.0/24', gateway: '10.5.50.0', oif: dev, onlink: true });
    await network.reconcileNow();
    expect(fake.routes.has('254|10.5.50.0/24')).toBe(true);
    release();
    await tick();
    expect(fake.routes.has('254|10.5.50.0/24')).toBe(false);
  });

  it('re-creates the device and re-programs peers when the device is deleted', async () => {
    subnets.put(subnets.leaseFor(2, vx(2)));
    await startWith(subnets.manager());
    const old = dev;
    fake.links.delete('weft.1');
    fake.routes.clear();
    fake.neighs.clear();
    fake.fdb.clear();
    fake.emitLink({ kind: 'removed', index: old, name: 'weft.1' });
    await tick(50);
    const now = fake.links.get('weft.1')!;
    expect(now.index).not.toBe(old);
    expect(now.mac).toBe(network.vtepMacs[4]);
    expect(fake.routes.get('254|10.5.2.0/24')).toMatchObject({ oif: now.index });
    expect(fake.fdb.size).toBe(1);
  });

  it('reconciles after a netlink socket was lost (resync event): stale entries go, missing ones come back', async () => {
    subnets.put(subnets.leaseFor(2, vx(2)));
    await startWith(subnets.manager());
    // While "events were lost": a peer route vanished and a stranger appeared.
    fake.routes.delete('254|10.5.2.0/24');
    await fake.neighReplace({ ifindex: dev, dst: '10.5.66.0', mac: '0e:66:66:66:66:66' });
    fake.emitLink({ kind: 'resync' });
    await tick(50);
    expect(fake.routes.has('254|10.5.2.0/24')).toBe(true);
    expect(fake.neighs.has(`${dev}|10.5.66.0`)).toBe(false);
  });

  it('ignores link events of other devices, reacts to its own', async () => {
    await startWith(subnets.manager());
    let dumps = 0;
    const routeList = fake.routeList.bind(fake);
    fake.routeList = (...args) => {
      dumps++;
      return routeList(...args);
    };
    fake.emitLink({ kind: 'removed', index: 99, name: 'veth9' });
    fake.emitLink({
      kind: 'changed',
      link: { index: 98, name: 'eth1', kind: null, mtu: 1500, mac: null, up: false },
    });
    await tick(50);
    expect(dumps).toBe(0);
    fake.emitLink({ kind: 'changed', link: { ...fake.links.get('weft.1')!, up: false } });
    await tick(50);
    expect(dumps).toBeGreaterThan(0);
  });

  it('repairs only the peer whose entry another actor deleted, from the entry event', async () => {
    subnets.put(subnets.leaseFor(2, vx(2)));
    subnets.put(subnets.leaseFor(4, vx(4)));
    await startWith(subnets.manager());
    // the full reconcile left the event groups while it ran
    expect(fake.mutes).toEqual([true, false]);
    const route = fake.routes.get('254|10.5.2.0/24')!;
    fake.routes.delete('254|10.5.2.0/24');
    fake.calls.length = 0;
    fake.emitEntry({ kind: 'route', removed: true, route });
    // an echo of weft's own entry and another actor's entry do nothing
    fake.emitEntry({ kind: 'route', removed: false, route: fake.routes.get('254|10.5.4.0/24')! });
    fake.emitEntry({ kind: 'route', removed: true, route: { ...route, dst: '192.168.77.0/24' } });
    await tick(100);
    expect(fake.calls.filter((c) => !c.startsWith('applyBatch'))).toEqual([
      'neighReplace 10.5.2.0 0e:00:00:00:00:02',
      'fdbReplace 0e:00:00:00:00:02 198.18.0.2',
      'routeReplace 10.5.2.0/24',
    ]);
    expect(fake.routes.get('254|10.5.2.0/24')).toEqual(route);
    expect(logs.some((l) => l.includes('route 10.5.2.0/24 deleted'))).toBe(true);
    expect(fake.mutes).toEqual([true, false]); // no full reconcile
  });

  it('does not repair a peer whose programming failed (its entries were undone on purpose)', async () => {
    fake.failWith = (op, obj) => (op === 'routeReplace' && obj === '10.5.3.0/24' ? 'EINVAL' : null);
    subnets.put(subnets.leaseFor(3, vx(3)));
    await startWith(subnets.manager());
    fake.calls.length = 0;
    fake.emitEntry({
      kind: 'neigh',
      removed: true,
      neigh: { family: 4, ifindex: dev, dst: '10.5.3.0', mac: null, permanent: false },
    });
    await tick(100);
    expect(fake.calls).toEqual([]);
  });

  it('reconciles fully when entry events were lost', async () => {
    subnets.put(subnets.leaseFor(2, vx(2)));
    await startWith(subnets.manager());
    fake.routes.delete('254|10.5.2.0/24');
    fake.emitEntry({ kind: 'resync' });
    await tick(50);
    expect(fake.routes.has('254|10.5.2.0/24')).toBe(true);
    expect(fake.mutes).toEqual([true, false, true, false]);
  });
});
