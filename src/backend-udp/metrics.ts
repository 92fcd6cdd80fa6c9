/**
 * The forwarder's counters as Prometheus samples (names and labels fixed here, so the daemon's
 * /metrics and weftctl agree). Pure: the daemon reads `UdpNetwork.forwarderStats()` at scrape time and
 * exposes these, e.g. from a metric's `collect()` callback (src/daemon/prom.ts).
 */
import type { ForwarderStats } from '../dataplane/forwarder.js';

export interface MetricSample {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const DROP_LABELS: Record<keyof ForwarderStats['drops'], string> = {
  noRoute: 'no_route',
  unknownPeer: 'unknown_peer',
  badInnerSource: 'bad_inner_source',
  badInnerDest: 'bad_inner_dest',
  badChecksum: 'bad_checksum',
  congested: 'congested',
  malformed: 'malformed',
  ttl: 'ttl_expired',
  unsupported: 'unsupported',
  tunWrite: 'tun_write',
  udpSend: 'udp_send',
};

export function forwarderMetricSamples(s: ForwarderStats): MetricSample[] {
  const out: MetricSample[] = [];
  const add = (
    name: string,
    help: string,
    type: MetricSample['type'],
    value: number,
    labels: Record<string, string> = {},
  ): void => {
    out.push({ name, help, type, labels, value });
  };
  const pk = 'IP packets through the UDP forwarder (tx: to peers, rx: from peers)';
  add('weft_udp_packets_total', pk, 'counter', s.txPackets, { direction: 'tx' });
  add('weft_udp_packets_total', pk, 'counter', s.rxPackets, { direction: 'rx' });
  const by = 'IP bytes through the UDP forwarder';
  add('weft_udp_bytes_total', by, 'counter', s.txBytes, { direction: 'tx' });
  add('weft_udp_bytes_total', by, 'counter', s.rxBytes, { direction: 'rx' });
  for (const [key, reason] of Object.entries(DROP_LABELS)) {
    const v = s.drops[key as keyof ForwarderStats['drops']];
    add('weft_udp_drops_total', 'Packets the UDP forwarder dropped, by reason', 'counter', v, {
      reason,
    });
  }
  add('weft_udp_gso_batches_total', 'Sends with UDP_SEGMENT', 'counter', s.gsoSends);
  add(
    'weft_udp_gro_batches_total',
    'Receives carrying several datagrams',
    'counter',
    s.groReceives,
  );
  add(
    'weft_udp_coalesced_writes_total',
    'TUN writes of coalesced TCP super-packets',
    'counter',
    s.coalescedWrites,
  );
  add('weft_udp_tso_packets_total', 'TUN super-packets segmented', 'counter', s.tsoPackets);
  add('weft_udp_icmp_unreachable_total', 'ICMP net-unreachable sent', 'counter', s.icmpSent);
  add('weft_udp_routes', 'Routes in the forwarder table', 'gauge', s.routes);
  add(
    'weft_udp_route_failures_total',
    'Route inserts the forwarder failed (ENOMEM/ENOSPC); retried at the next resync',
    'counter',
    s.commandsFailed,
  );
  add(
    'weft_udp_peer_sockets',
    'Peers with their own send socket (congestion isolation)',
    'gauge',
    s.peerSockets,
  );
  add(
    'weft_udp_forwarder_running',
    '1 while the forwarder thread runs',
    'gauge',
    s.running ? 1 : 0,
  );
  for (const [offload, on] of Object.entries(s.offloads)) {
    add('weft_udp_offload', 'Offloads in use (0 = fallback path)', 'gauge', on ? 1 : 0, {
      offload,
    });
  }
  return out;
}
