/**
 * The entry guard (src/backend/entry-guard.ts) and the owner index it looks events up in
 * (src/backend/programmed-peers.ts): which events are another actor's effect on weft's entries and which
 * are echoes or someone else's; bursts coalesce into one repair; a fight is bounded per peer (10 in a
 * row, then one per second) and warned once per peer per interval; lost events ask for a reconcile.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EntryGuard, entryIds, tampered } from '../../src/backend/entry-guard.js';
import type { PeerEntries } from '../../src/backend/peer-entries.js';
import { ProgrammedPeers } from '../../src/backend/programmed-peers.js';
import type { EntryEvent, RouteEntry } from '../../src/netlink/index.js';
import { warnRecorder } from '../helpers/logger.js';

const peer: PeerEntries = {
  key: '10.5.2.0-24/4',
  subnet: '10.5.2.0/24',
  neigh: { ifindex: 7, dst: '10.5.2.0', mac: '0e:00:00:00:00:02' },
  fdb: { ifindex: 7, mac: '0e:00:00:00:00:02', dst: '198.18.0.2' },
  route: { dst: '10.5.2.0/24', gateway: '10.5.2.0', oif: 7, onlink: true },
};
const LEASE = '10.5.2.0-24';
const ourRoute: RouteEntry = {
  family: 4,
  dst: '10.5.2.0/24',
  gateway: '10.5.2.0',
  oif: 7,
  onlink: true,
  table: 254,
  protocol: 'BOOT',
  type: 'UNICAST',
};

function programmed(): ProgrammedPeers<PeerEntries> {
  return new ProgrammedPeers<PeerEntries>().withIds(entryIds).set(LEASE, [peer]);
}

describe('tampered', () => {
  const p = programmed();
  const owner = (id: string) => p.owner(id);
  const route = (removed: boolean, r: Partial<RouteEntry> = {}): EntryEvent => ({
    kind: 'route',
    removed,
    route: { ...ourRoute, ...r },
  });

  it('ignores echoes of weft’s own entries and entries weft does not own', () => {
    expect(tampered(route(false), owner)).toBeNull();
    expect(tampered(route(true, { dst: '192.168.77.0/24' }), owner)).toBeNull();
    expect(tampered(route(true, { table: 100 }), owner)).toBeNull();
    // another route to the same destination (another device) deleted: ours stays
    expect(tampered(route(true, { oif: 2, gateway: null, onlink: false }), owner)).toBeNull();
    const neigh = { family: 4 as const, ...peer.neigh!, permanent: true };
    expect(tampered({ kind: 'neigh', removed: false, neigh }, owner)).toBeNull();
    expect(
      tampered({ kind: 'neigh', removed: true, neigh: { ...neigh, ifindex: 2 } }, owner),
    ).toBeNull();
    const fdb = { ...peer.fdb!, permanent: true };
    expect(tampered({ kind: 'fdb', removed: false, fdb }, owner)).toBeNull();
    expect(
      tampered({ kind: 'fdb', removed: true, fdb: { ...fdb, dst: '198.18.0.9' } }, owner),
    ).toBeNull();
  });

  it('names what another actor did to an entry weft owns', () => {
    expect(tampered(route(true), owner)).toEqual({
      lease: LEASE,
      effect: 'route 10.5.2.0/24 deleted',
    });
    expect(tampered(route(false, { oif: 2, gateway: null, onlink: false }), owner)?.effect).toBe(
      'route 10.5.2.0/24 changed to UNICAST oif 2',
    );
    const neigh = { family: 4 as const, ...peer.neigh!, permanent: true };
    expect(tampered({ kind: 'neigh', removed: true, neigh }, owner)?.effect).toBe(
      'neighbour 10.5.2.0 deleted',
    );
    const failed = { ...neigh, mac: null, permanent: false };
    expect(tampered({ kind: 'neigh', removed: false, neigh: failed }, owner)?.effect).toBe(
      'neighbour 10.5.2.0 deleted',
    );
    expect(
      tampered(
        { kind: 'neigh', removed: false, neigh: { ...neigh, mac: '02:00:00:00:00:99' } },
        owner,
      )?.effect,
    ).toBe('neighbour 10.5.2.0 changed to lladdr 02:00:00:00:00:99 permanent');
    const fdb = { ...peer.fdb!, permanent: true };
    expect(tampered({ kind: 'fdb', removed: true, fdb }, owner)?.effect).toBe(
      'FDB 0e:00:00:00:00:02 deleted',
    );
    expect(
      tampered({ kind: 'fdb', removed: false, fdb: { ...fdb, dst: '198.18.0.9' } }, owner)?.effect,
    ).toBe('FDB 0e:00:00:00:00:02 changed to dst 198.18.0.9');
  });

  it('follows the programmed entries: a peer removed or changed owns nothing of its old entries', () => {
    const q = programmed();
    expect(q.owner('r|254|10.5.2.0/24')?.lease).toBe(LEASE);
    q.set(LEASE, [{ ...peer, route: { ...peer.route, dst: '10.5.3.0/24' } }]);
    expect(q.owner('r|254|10.5.2.0/24')).toBeUndefined();
    expect(q.owner('r|254|10.5.3.0/24')?.lease).toBe(LEASE);
    q.delete(LEASE);
    expect(q.owner('r|254|10.5.3.0/24')).toBeUndefined();
    q.clear();
    q.set(LEASE, [peer]);
    expect(q.owner('n|7|10.5.2.0')?.lease).toBe(LEASE); // built on the first lookup after a clear
  });
});

describe('EntryGuard', () => {
  afterEach(() => vi.useRealTimers());

  function setup() {
    vi.useFakeTimers();
    let now = 0;
    const p = programmed();
    for (let i = 3; i < 6; i++) {
      const dst = `10.5.${i}.0/24`;
      p.set(`10.5.${i}.0-24`, [
        { ...peer, key: `10.5.${i}.0-24/4`, route: { ...peer.route, dst } },
      ]);
    }
    const repairs: string[][] = [];
    const reconciles: string[] = [];
    const log = warnRecorder();
    const guard = new EntryGuard(
      {
        owner: (id) => p.owner(id),
        repair: (l) => repairs.push([...l]),
        reconcile: (r) => reconciles.push(r),
      },
      { log, now: () => now },
    );
    const advance = (ms: number): void => {
      now += ms;
      vi.advanceTimersByTime(ms);
    };
    const del = (dst: string): void =>
      guard.handle({ kind: 'route', removed: true, route: { ...ourRoute, dst } });
    return { guard, repairs, reconciles, log, advance, del };
  }

  it('coalesces a burst into one repair of the peers it touched', () => {
    const { repairs, advance, del, log } = setup();
    for (let i = 0; i < 100; i++) del(`10.5.${3 + (i % 3)}.0/24`);
    del('192.168.77.0/24');
    expect(repairs).toEqual([]);
    advance(50);
    expect(repairs).toEqual([['10.5.3.0-24', '10.5.4.0-24', '10.5.5.0-24']]);
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]![1]?.['peers']).toBe(3);
  });

  it('bounds a fight: 10 repairs in a row, then one per second; one warning per peer per minute', () => {
    const { repairs, advance, del, log } = setup();
    for (let i = 0; i < 1000; i++) {
      del('10.5.3.0/24');
      advance(10); // 10 s of deletions every 10 ms
    }
    const n = repairs.length;
    expect(n).toBeGreaterThanOrEqual(15);
    expect(n).toBeLessThanOrEqual(10 + 10 + 1);
    expect(log.warnings).toHaveLength(1);
    // the fight stopped: the last deletion is still repaired, within a second
    del('10.5.3.0/24');
    advance(1_050);
    expect(repairs.length).toBe(n + 1);
    advance(60_000);
    del('10.5.3.0/24');
    advance(50);
    expect(log.warnings).toHaveLength(2);
  });

  it('asks for a full reconcile when events were lost, and stops when closed', () => {
    const { guard, repairs, reconciles, advance, del } = setup();
    guard.handle({ kind: 'resync' });
    expect(reconciles).toEqual(['entry events lost']);
    del('10.5.3.0/24');
    guard.close();
    advance(100);
    expect(repairs).toEqual([]);
  });
});
