/**
 * Prometheus metrics of the WireGuard backend's engines, read at scrape time from a consistent
 * snapshot of each device (the engine answers within a second): per peer the last handshake, bytes and
 * packets each way, handshakes, the endpoint; per device the drops by reason; and the most recent
 * handshake from a key that is no peer (`weftctl doctor` names the host whose published key does not
 * match the one it handshakes with from it). Keys are public keys (base64); no secret is exported.
 */
import { Gauge, type Registry } from './prom.js';
import type { WireguardDeviceStatus } from '../backend-wireguard/index.js';
import type { WireGuardSnapshot } from '../dataplane/wireguard-device.js';

const DROPS: readonly [string, keyof WireGuardSnapshot['stats']][] = [
  ['no_route', 'dropNoRoute'],
  ['no_session', 'dropNoSession'],
  ['malformed', 'dropMalformed'],
  ['mac1', 'dropMac1'],
  ['unknown_key', 'dropUnknownKey'],
  ['handshake', 'dropHandshake'],
  ['ratelimited', 'dropRatelimited'],
  ['stale_session', 'dropStale'],
  ['decrypt', 'dropDecrypt'],
  ['replay', 'dropReplay'],
  ['allowed_ips', 'dropAllowedIps'],
  ['unsupported', 'dropUnsupported'],
  ['tun_write', 'dropTunWrite'],
  ['udp_send', 'dropUdpSend'],
];

/** Registers the collectors; `devices` is read at every scrape (empty before the network exists). */
export function registerWireguardMetrics(
  registry: Registry,
  devices: () => readonly WireguardDeviceStatus[],
): void {
  let cache: {
    at: number;
    snaps: { dev: WireguardDeviceStatus; snap: WireGuardSnapshot }[];
  } | null = null;
  const snapshots = (): { dev: WireguardDeviceStatus; snap: WireGuardSnapshot }[] => {
    // one snapshot per device per scrape, shared by every collector below (elapsed time: a wall
    // clock stepped back must not freeze the numbers for the length of the step)
    if (cache && performance.now() - cache.at < 500) return cache.snaps;
    const snaps: { dev: WireguardDeviceStatus; snap: WireGuardSnapshot }[] = [];
    for (const dev of devices()) {
      try {
        snaps.push({ dev, snap: dev.snapshot() });
      } catch {
        /* device closed (daemon stopping): nothing to export */
      }
    }
    cache = { at: performance.now(), snaps };
    return snaps;
  };
  const peerGauge = (
    name: string,
    help: string,
    value: (p: WireGuardSnapshot['peers'][number]) => number,
    withEndpoint = false,
  ): void => {
    new Gauge({
      name,
      help,
      labelNames: withEndpoint ? ['device', 'public_key', 'endpoint'] : ['device', 'public_key'],
      registers: [registry],
      collect() {
        this.reset();
        for (const { dev, snap } of snapshots()) {
          for (const p of snap.peers) {
            const labels: Record<string, string> = { device: dev.name, public_key: p.publicKey };
            if (withEndpoint) labels['endpoint'] = p.endpoint ?? '';
            this.set(labels, value(p));
          }
        }
      },
    });
  };
  peerGauge(
    'weft_wireguard_peer_last_handshake_seconds',
    'Unix time of the last completed handshake with the peer (0 = never)',
    (p) => p.lastHandshakeSec,
    true,
  );
  peerGauge(
    'weft_wireguard_peer_receive_bytes_total',
    'Bytes received from the peer',
    (p) => p.rxBytes,
  );
  peerGauge('weft_wireguard_peer_transmit_bytes_total', 'Bytes sent to the peer', (p) => p.txBytes);
  peerGauge(
    'weft_wireguard_peer_receive_packets_total',
    'Inner packets received',
    (p) => p.rxPackets,
  );
  peerGauge('weft_wireguard_peer_transmit_packets_total', 'Inner packets sent', (p) => p.txPackets);
  peerGauge('weft_wireguard_peer_handshakes_total', 'Sessions established', (p) => p.handshakes);
  peerGauge(
    'weft_wireguard_peer_handshake_initiations_total',
    'Handshake initiations sent to the peer',
    (p) => p.handshakeInitiations,
  );
  peerGauge('weft_wireguard_peer_session', '1 while a session with the peer exists', (p) =>
    p.hasSession ? 1 : 0,
  );
  new Gauge({
    name: 'weft_wireguard_drops_total',
    help: 'Packets dropped by the WireGuard engine, by reason',
    labelNames: ['device', 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { dev, snap } of snapshots()) {
        for (const [reason, key] of DROPS) this.set({ device: dev.name, reason }, snap.stats[key]);
      }
    },
  });
  new Gauge({
    name: 'weft_wireguard_packets_total',
    help: 'Inner packets through the WireGuard engine, by direction',
    labelNames: ['device', 'direction'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { dev, snap } of snapshots()) {
        this.set({ device: dev.name, direction: 'tx' }, snap.stats.txPackets);
        this.set({ device: dev.name, direction: 'rx' }, snap.stats.rxPackets);
      }
    },
  });
  new Gauge({
    name: 'weft_wireguard_unknown_key_age_seconds',
    help: 'Age of the last handshake from a public key that is no peer, with its source',
    labelNames: ['device', 'endpoint', 'public_key'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { dev, snap } of snapshots()) {
        const u = snap.unknownKey;
        if (u) {
          this.set(
            { device: dev.name, endpoint: u.endpoint, public_key: u.publicKey },
            u.ageMs / 1000,
          );
        }
      }
    },
  });
}
