/**
 * weftd's WireGuard metrics: read at scrape time from each device's snapshot, one snapshot per scrape,
 * and readable back by weftctl's parser (src/cli/wireguard-view.ts) — the contract `weftctl peers`,
 * `status` and `doctor` rely on. The device here is a plain object (the engine itself is tested on the
 * real kernel in test/integration/wireguard-interop.test.ts).
 */
import { describe, expect, it, vi } from 'vitest';
import { Registry } from '../../../src/daemon/prom.js';
import { registerWireguardMetrics } from '../../../src/daemon/wireguard-metrics.js';
import type { WireguardDeviceStatus } from '../../../src/backend-wireguard/index.js';
import type { WireGuardSnapshot } from '../../../src/dataplane/wireguard-device.js';
import { wgLiveFromMetrics } from '../../../src/cli/wireguard-view.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const OTHER = Buffer.alloc(32, 8).toString('base64');

function snapshot(): WireGuardSnapshot {
  const stats = Object.fromEntries(
    [
      'txPackets',
      'txBytes',
      'rxPackets',
      'rxBytes',
      'tunReads',
      'tunWrites',
      'tsoPackets',
      'gsoSends',
      'groReceives',
      'coalescedWrites',
      'rxHandshake',
      'txHandshake',
      'rxCookie',
      'txCookie',
      'underLoad',
      'dropNoRoute',
      'dropNoSession',
      'dropMalformed',
      'dropMac1',
      'dropUnknownKey',
      'dropHandshake',
      'dropRatelimited',
      'dropStale',
      'dropDecrypt',
      'dropReplay',
      'dropAllowedIps',
      'dropUnsupported',
      'dropTunWrite',
      'dropUdpSend',
      'commandsQueued',
      'commandsApplied',
      'peers',
      'allowedIps',
      'offVnetHdr',
      'offTso',
      'offUdpGso',
      'offUdpGro',
      'running',
      'fatalErrno',
    ].map((k) => [k, 0]),
  ) as unknown as WireGuardSnapshot['stats'];
  return {
    stats: { ...stats, dropReplay: 3, rxPackets: 10, txPackets: 11 },
    peers: [
      {
        publicKey: KEY,
        endpoint: '198.18.0.2:51820',
        hasSession: true,
        persistentKeepalive: 0,
        lastHandshakeSec: 1_800_000_000,
        rxBytes: 500,
        txBytes: 600,
        rxPackets: 5,
        txPackets: 6,
        handshakes: 1,
        handshakeInitiations: 2,
        dropAllowedIps: 0,
        dropReplay: 3,
      },
    ],
    unknownKey: { endpoint: '198.18.0.9:51820', publicKey: OTHER, ageMs: 1500 },
  };
}

describe('WireGuard metrics', () => {
  it('exports per-peer state and drops that weftctl reads back', async () => {
    const registry = new Registry();
    let calls = 0;
    const dev: WireguardDeviceStatus = {
      name: 'weft-wg',
      family: 4,
      listenPort: 51820,
      publicKey: KEY,
      snapshot: () => {
        calls++;
        return snapshot();
      },
    };
    registerWireguardMetrics(registry, () => [dev]);
    const text = await registry.metrics();
    expect(calls).toBe(1); // one snapshot serves every collector of a scrape
    expect(text).toContain(
      `weft_wireguard_peer_last_handshake_seconds{device="weft-wg",public_key="${KEY}",endpoint="198.18.0.2:51820"} 1800000000`,
    );
    expect(text).toContain('weft_wireguard_drops_total{device="weft-wg",reason="replay"} 3');
    const live = wgLiveFromMetrics(text);
    expect(live.peers.get(KEY)).toEqual({
      device: 'weft-wg',
      publicKey: KEY,
      endpoint: '198.18.0.2:51820',
      lastHandshakeSec: 1_800_000_000,
      rxBytes: 500,
      txBytes: 600,
      handshakeInitiations: 2,
      session: true,
    });
    expect(live.unknown).toEqual([
      { device: 'weft-wg', endpoint: '198.18.0.9:51820', publicKey: OTHER, ageSec: 1.5 },
    ]);
  });
  it('a scrape after the wall clock was stepped back reads the device again, not the cache', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-06-01T12:00:00Z') });
    try {
      const registry = new Registry();
      let calls = 0;
      const snap = (): WireGuardSnapshot => (calls++, snapshot());
      const dev = { name: 'weft-wg', family: 4, listenPort: 51820, publicKey: KEY, snapshot: snap };
      registerWireguardMetrics(registry, () => [dev as WireguardDeviceStatus]);
      await registry.metrics();
      vi.setSystemTime(new Date('2026-06-01T11:00:00Z')); // NTP steps the clock back an hour
      await new Promise((r) => setTimeout(r, 600)); // past the per-scrape cache, really elapsed
      await registry.metrics();
      expect(calls).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });
  it('exports nothing before the network exists and survives a closed device', async () => {
    const registry = new Registry();
    let devices: WireguardDeviceStatus[] = [];
    registerWireguardMetrics(registry, () => devices);
    expect(await registry.metrics()).not.toMatch(/^weft_wireguard_peer_\w+\{/m);
    devices = [
      {
        name: 'weft-wg',
        family: 4,
        listenPort: 51820,
        publicKey: KEY,
        snapshot: () => {
          throw new Error('closed');
        },
      },
    ];
    await new Promise((r) => setTimeout(r, 600)); // past the per-scrape cache
    expect(await registry.metrics()).not.toMatch(/^weft_wireguard_peer_\w+\{/m);
  });
});
