/**
 * The WireGuard engine's live state as weftctl sees it: weftd exports it on /metrics
 * (src/daemon/wireguard-metrics.ts), read here from the health server weftctl already knows
 * (`--healthz-url` / `--healthz-port`). Pure parsing plus one fetch; a failure is data, not a throw.
 * Also the pure checks `doctor` runs on it: a peer whose published key differs from the key its host
 * handshakes with, and a peer that never completes a handshake.
 */
import { describeError } from '../errors.js';
import type { Lease } from '../lease/lease.js';
import { leasePublicKey } from '../backend-wireguard/plan.js';
import { DEFAULT_WG_PORT, parseWireguardConfig } from '../backend-wireguard/config.js';
import type { NetworkConfig } from '../subnet/manager.js';
import { fail, pass, skip, warn, type Check } from './doctor-check.js';

export interface WgPeerLive {
  readonly device: string;
  readonly publicKey: string;
  readonly endpoint: string | null;
  readonly lastHandshakeSec: number;
  readonly rxBytes: number;
  readonly txBytes: number;
  readonly handshakeInitiations: number;
  readonly session: boolean;
}

interface WgLive {
  /** Per public key, the least healthy of its peers (Mode separate has one per device: the same key
   *  on the IPv4 and the IPv6 device). */
  readonly peers: ReadonlyMap<string, WgPeerLive>;
  /** Every peer of every device. */
  readonly all: readonly WgPeerLive[];
  /** Every peer of every device as `<device>|<public key>|<endpoint>` (backend-wireguard/plan.ts
   *  wgLiveId): the leases weftd has programmed, for the planner's claim order. */
  readonly programmed: ReadonlySet<string>;
  /** Handshakes from keys no peer has: `<device>`, the sender's endpoint, its key, seconds ago. */
  readonly unknown: readonly {
    device: string;
    endpoint: string;
    publicKey: string;
    ageSec: number;
  }[];
  readonly drops: Readonly<Record<string, number>>;
}

export type WgLiveResult =
  { readonly ok: true; readonly live: WgLive } | { readonly ok: false; readonly error: string };

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Prometheus text format samples (the subset src/daemon/prom.ts writes: no timestamps). */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    const body = m[3] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    for (let l = re.exec(body); l; l = re.exec(body)) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    }
    out.push({ name: m[1]!, labels, value: Number(m[4]) });
  }
  return out;
}

/** weftd's per-peer series (src/daemon/wireguard-metrics.ts) and the field of WgPeerLive each fills. */
const PEER_SERIES = new Map<
  string,
  (value: number, labels: Sample['labels']) => Partial<WgPeerLive>
>([
  [
    'weft_wireguard_peer_last_handshake_seconds',
    (v, l) => ({ lastHandshakeSec: v, endpoint: l['endpoint'] || null }),
  ],
  ['weft_wireguard_peer_receive_bytes_total', (v) => ({ rxBytes: v })],
  ['weft_wireguard_peer_transmit_bytes_total', (v) => ({ txBytes: v })],
  ['weft_wireguard_peer_handshake_initiations_total', (v) => ({ handshakeInitiations: v })],
  ['weft_wireguard_peer_session', (v) => ({ session: v === 1 })],
]);

/** The less healthy of two peers: no handshake yet, else the older handshake. */
const lessHealthy = (a: WgPeerLive, b: WgPeerLive): WgPeerLive =>
  b.lastHandshakeSec === 0 || (a.lastHandshakeSec !== 0 && b.lastHandshakeSec < a.lastHandshakeSec)
    ? b
    : a;

export function wgLiveFromMetrics(text: string): WgLive {
  /** `<device>|<public key>` → its peer: a key on two devices is two peers, never mixed */
  const byDevice = new Map<string, WgPeerLive>();
  const unknown: WgLive['unknown'][number][] = [];
  const drops: Record<string, number> = {};
  const programmed = new Set<string>();
  for (const s of parseMetrics(text)) {
    const device = s.labels['device'] ?? '';
    const key = s.labels['public_key'] ?? '';
    const endpoint = s.labels['endpoint'] ?? '';
    const field = PEER_SERIES.get(s.name);
    if (field) {
      const id = `${device}|${key}`;
      const p = byDevice.get(id) ?? {
        device,
        publicKey: key,
        endpoint: null,
        lastHandshakeSec: 0,
        rxBytes: 0,
        txBytes: 0,
        handshakeInitiations: 0,
        session: false,
      };
      byDevice.set(id, { ...p, ...field(s.value, s.labels) });
      // one handshake series per peer of every device, the only one labelled with its endpoint
      if (s.name === 'weft_wireguard_peer_last_handshake_seconds')
        programmed.add(`${device}|${key}|${endpoint}`);
    } else if (s.name === 'weft_wireguard_drops_total') {
      const reason = s.labels['reason'] ?? '?';
      drops[reason] = (drops[reason] ?? 0) + s.value;
    } else if (s.name === 'weft_wireguard_unknown_key_age_seconds') {
      unknown.push({ device, endpoint, publicKey: key, ageSec: s.value });
    }
  }
  const all = [...byDevice.values()];
  const peers = new Map<string, WgPeerLive>();
  for (const p of all) {
    const seen = peers.get(p.publicKey);
    peers.set(p.publicKey, seen ? lessHealthy(seen, p) : p);
  }
  return { peers, all, unknown, drops, programmed };
}

/** weftd's engine state for a wireguard network, read from its /metrics when weftctl knows weftd's
 *  health server (else null); `{ok: false}` when weftd does not answer. */
export async function readWgLiveFor(
  config: NetworkConfig | null,
  o: { readonly healthzUrl: string | null; readonly timeoutMs: number },
): Promise<WgLiveResult | null> {
  const base = o.healthzUrl;
  if (config?.backend.type !== 'wireguard' || !base) return null;
  try {
    const r = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(o.timeoutMs) });
    if (r.status !== 200) return { ok: false, error: `${base}/metrics answered ${r.status}` };
    return { ok: true, live: wgLiveFromMetrics(await r.text()) };
  } catch (err) {
    return { ok: false, error: `${base}/metrics: ${describeError(err)}` };
  }
}

/** The public key a lease publishes (BackendData, else BackendV6Data), or null. */
function publishedKey(lease: Lease): string | null {
  for (const d of [lease.attrs.backendData, lease.attrs.backendV6Data]) {
    if (d === undefined) continue;
    const k = leasePublicKey(d);
    if ('key' in k) return k.key;
  }
  return null;
}

/**
 * doctor's WireGuard checks over the peers' leases and the engine's live state:
 * - a handshake arrived from a peer's public IP with a key that is not the one its lease publishes
 *   (the host runs with another key than it published: a restored or copied key file);
 * - a peer never completed a handshake although this host sent it initiations (UDP port blocked,
 *   wrong key or PSK on one side, or the host is down).
 */
export function wgFindings(
  peerLeases: readonly Lease[],
  live: WgLive,
  port: number | ((device: string) => number),
  nowSec = Date.now() / 1000,
) {
  const portOf = (device: string): number => (typeof port === 'number' ? port : port(device));
  const out: { lease: string; problem: string; fixes: string[] }[] = [];
  for (const l of peerLeases) {
    if (l.attrs.backendType !== 'wireguard') continue;
    const key = publishedKey(l);
    const ips = [l.attrs.publicIp, l.attrs.publicIpv6].filter((x): x is string => !!x);
    // The engine keeps the last unknown-key handshake until another one replaces it: one from before
    // this peer's last handshake with the published key is history (a host that started before it
    // was our peer, or that had an older key since replaced), not the key the host uses now.
    const mine = key ? live.all.filter((p) => p.publicKey === key) : [];
    const handshook = (device: string): number =>
      mine.find((p) => p.device === device)?.lastHandshakeSec ?? 0;
    const mismatch = live.unknown.find(
      (u) =>
        ips.some((ip) => u.endpoint.startsWith(`${ip}:`) || u.endpoint.startsWith(`[${ip}]:`)) &&
        u.publicKey !== key &&
        !(handshook(u.device) > 0 && handshook(u.device) >= Math.floor(nowSec - u.ageSec)),
    );
    if (mismatch) {
      out.push({
        lease: l.key,
        problem:
          `host ${ips.join(' ')} handshakes with key ${mismatch.publicKey} (${Math.round(mismatch.ageSec)} s ago) ` +
          `but its lease publishes ${key ?? 'no key'}`,
        fixes: [
          `on ${ips[0] ?? 'that host'}: systemctl restart weftd   # re-publishes the key it uses`,
          "or restore that host's <state-dir>/wireguard.key from the key its lease publishes",
        ],
      });
      continue;
    }
    // each device on its own (Mode separate: the IPv4 and the IPv6 session can fail apart)
    for (const p of mine) {
      if (p.lastHandshakeSec !== 0 || p.handshakeInitiations === 0) continue;
      const on = mine.length > 1 ? ` on ${p.device}` : '';
      out.push({
        lease: mine.length > 1 ? `${l.key}:${p.device}` : l.key,
        problem: `peer ${ips.join(' ')} (key ${key}) never completed a handshake${on} (${p.handshakeInitiations} initiations sent)`,
        fixes: [
          `check that UDP ${portOf(p.device)} from this host reaches ${ips[0] ?? 'the peer'} (firewall, NAT)`,
          'check that both hosts use the same Backend.PSK and that weftd runs there',
        ],
      });
    }
  }
  return out;
}

/** doctor's WireGuard section: one check per finding, or one pass/skip. */
export function wgDoctorChecks(
  config: NetworkConfig | null,
  peerLeases: readonly Lease[],
  live: WgLiveResult | null,
): Check[] {
  if (!config || config.backend.type !== 'wireguard') return [];
  const unchecked = 'WireGuard sessions not checked';
  if (!live) return [skip('wireguard', `${unchecked} (no --healthz-url / --healthz-port)`)];
  if (!live.ok) {
    // the engine runs inside weftd: no answer means no engine (the weftd check says why)
    return [
      warn(
        'wireguard',
        `${unchecked}: weftd, which runs the engine, does not answer (${live.error})`,
        ['systemctl status weftd; journalctl -u weftd -n 50   # why weftd is not running'],
      ),
    ];
  }
  let port = (_device: string): number => DEFAULT_WG_PORT;
  try {
    const c = parseWireguardConfig(config.backend.raw);
    // Mode separate: the IPv6 device listens on ListenPortV6 (backend-wireguard/plan.ts)
    port = (device) =>
      c.mode === 'separate' && device === c.nameV6 ? c.listenPortV6 : c.listenPort;
  } catch {
    /* reported by the config check */
  }
  const findings = wgFindings(peerLeases, live.live, port);
  if (findings.length === 0) {
    const peers = [...live.live.peers.values()]; // per key, its least healthy session
    const n = peers.filter((p) => p.lastHandshakeSec > 0).length;
    return [
      pass('wireguard', `WireGuard: ${n} of ${peers.length} peers have completed a handshake`),
    ];
  }
  return findings.map((f) => fail(`wireguard:${f.lease}`, f.problem, [...f.fixes]));
}

/** Seconds since the peer's last handshake (never negative). */
export const handshakeAge = (w: WgPeerLive): number =>
  Math.max(0, Math.round(Date.now() / 1000 - w.lastHandshakeSec));

/** Per-lease live WireGuard state for `weftctl peers` / `status` (null entries: no such peer): the
 *  peer on `device` (the device of a row's family), else the least healthy of the lease's peers. */
export function wgPeerStatus(
  lease: Lease,
  live: WgLive,
  device?: string | null,
): WgPeerLive | null {
  const key = publishedKey(lease);
  if (!key) return null;
  if (!device) return live.peers.get(key) ?? null;
  return live.all.find((p) => p.device === device && p.publicKey === key) ?? null;
}
