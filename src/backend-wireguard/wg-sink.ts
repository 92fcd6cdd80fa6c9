/**
 * The wireguard backend's peer sink: peers are WireGuard peers of the native engine's device(s)
 * (public key → endpoint, allowed IPs, PSK, keepalive), one device per underlay family (plan.ts).
 * Setting a peer replaces its spec and makes its allowed IPs exactly the planned ones; a peer is only
 * re-set when its spec changed (re-setting would reset a roamed endpoint). A newly added peer gets a
 * handshake at once: after a restart of this host the peer may still hold a session with our previous
 * instance and would keep using it (its packets dropped here as stale) until its own timers notice;
 * our initiation replaces that session right away. The TUN(s) are repaired before every full reconcile.
 */
import type { PeerSink, SinkResult } from '../backend/peer-loop.js';
import type { WireGuardDevice } from '../dataplane/wireguard-device.js';
import { wgClaims, type WgPeerEntry } from './plan.js';

export interface WgSinkDevice {
  readonly name: string;
  readonly dev: WireGuardDevice;
}

export interface WgPeerSink extends PeerSink<WgPeerEntry> {
  /** Programs onto `dev` from now on (a device started anew after its TUN was deleted): it has no
   *  peers yet, so the next reconcile adds and initiates every one. */
  replaceDevice(name: string, dev: WireGuardDevice): void;
}

export function wgSink(
  devices: readonly WgSinkDevice[],
  ensureReady: () => Promise<void>,
): WgPeerSink {
  const byName = new Map(devices.map((d) => [d.name, d.dev]));
  /** device → public key → JSON of the spec last programmed */
  const programmed = new Map(devices.map((d) => [d.name, new Map<string, string>()]));
  const failed: { entry: WgPeerEntry; err: unknown }[] = [];
  const errors: unknown[] = [];
  const id = (device: string, key: string): string => `${device}|${key}`;

  const set = (entries: readonly WgPeerEntry[]): number => {
    let n = 0;
    for (const e of entries) {
      const dev = byName.get(e.device);
      const book = programmed.get(e.device);
      if (!dev || !book) {
        failed.push({ entry: e, err: new Error(`no WireGuard device ${e.device}`) });
        continue;
      }
      const json = JSON.stringify(e.peer);
      const present = dev.peerKeys().includes(e.peer.publicKey);
      if (present && book.get(e.peer.publicKey) === json) continue;
      try {
        dev.setPeer(e.peer);
        book.set(e.peer.publicKey, json);
        if (!present) dev.initiate(e.peer.publicKey);
        n++;
      } catch (err) {
        failed.push({ entry: e, err });
      }
    }
    return n;
  };

  const del = (device: string, keys: Iterable<string>): number => {
    const dev = byName.get(device);
    if (!dev) return 0;
    const present = new Set(dev.peerKeys());
    let n = 0;
    for (const key of keys) {
      if (!present.has(key)) continue;
      try {
        dev.removePeer(key);
        programmed.get(device)?.delete(key);
        n++;
      } catch (err) {
        errors.push(err);
      }
    }
    return n;
  };

  const result = (programmedN: number, deleted: number): SinkResult<WgPeerEntry> => ({
    programmed: programmedN,
    deleted,
    failed: failed.splice(0),
    errors: errors.splice(0),
  });

  return {
    replaceDevice(name, dev) {
      byName.set(name, dev);
      programmed.get(name)?.clear();
    },
    claims: wgClaims,
    ensureReady,
    async apply(program, remove, keep) {
      const wanted = new Set([...program, ...keep].map((e) => id(e.device, e.peer.publicKey)));
      let deleted = 0;
      for (const name of byName.keys()) {
        const gone = remove
          .filter((e) => e.device === name && !wanted.has(id(name, e.peer.publicKey)))
          .map((e) => e.peer.publicKey);
        deleted += del(name, gone);
      }
      return result(set(program), deleted);
    },
    async reconcile(desired) {
      const wanted = new Set(desired.map((e) => id(e.device, e.peer.publicKey)));
      let deleted = 0;
      for (const [name, dev] of byName)
        deleted += del(
          name,
          dev.peerKeys().filter((k) => !wanted.has(id(name, k))),
        );
      return result(set(desired), deleted);
    },
  };
}
