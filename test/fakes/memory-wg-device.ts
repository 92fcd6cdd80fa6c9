/**
 * In-memory twin of WireGuardDevice's peer table for unit tests of the wireguard backend's peer loop:
 * the same checks of a peer spec (checkPeerSpec), replace semantics for a peer's allowed IPs (a prefix
 * moves to the peer that sets it last, as the native side does), the same refusal once closed, and a
 * record of the handshakes initiated. Held to the real device by test/dataplane/wg-device.contract.ts
 * (test/unit/wg-device-memory.test.ts, test/integration/wg-device-contract.test.ts). No packets, no
 * socket: the engine itself is covered by test/integration/wireguard-interop.test.ts and
 * test/e2e/weftd-wireguard.test.ts.
 */
import { EventEmitter } from 'node:events';
import { WeftError } from '../../src/errors.js';
import {
  checkPeerSpec,
  decodeKey,
  encodeKey,
  publicKeyOf,
  type WireGuardDevice,
  type WireGuardPeerSpec,
  type WireGuardSnapshot,
} from '../../src/dataplane/wireguard-device.js';

export class MemoryWgDevice extends EventEmitter {
  readonly publicKey: string;
  readonly localPort: number;
  readonly family: 4 | 6;
  /** publicKey → spec last set */
  readonly peers = new Map<string, WireGuardPeerSpec>();
  /** Public keys a handshake was initiated with, in order. */
  readonly initiated: string[] = [];
  /** Calls of setPeer / removePeer (to check that unchanged peers are not re-set). */
  sets = 0;
  removes = 0;
  private isClosed = false;

  constructor(opts: { family: 4 | 6; port: number; privateKey: Buffer }) {
    super();
    this.family = opts.family;
    this.localPort = opts.port;
    this.publicKey = publicKeyOf(opts.privateKey);
  }

  /** Typed as the real device for `startDevice` (the backend uses only this subset). */
  asDevice(): WireGuardDevice {
    return this as unknown as WireGuardDevice;
  }

  private open(): void {
    if (this.isClosed) throw new WeftError('E_NATIVE', 'WireGuard device is closed');
  }

  setPeer(spec: WireGuardPeerSpec): void {
    const { pub, dsts } = checkPeerSpec(spec, this.family);
    this.open();
    const key = encodeKey(pub);
    const cidrs = [...new Set(dsts.map((d) => d.cidr))];
    for (const [k, p] of this.peers) {
      if (k === key) continue;
      const left = p.allowedIps.filter((c) => !cidrs.includes(c));
      if (left.length !== p.allowedIps.length) this.peers.set(k, { ...p, allowedIps: left });
    }
    this.peers.set(key, { ...spec, allowedIps: cidrs });
    this.sets++;
  }

  initiate(publicKey: string): void {
    decodeKey(publicKey, 'peer publicKey');
    this.open();
    this.initiated.push(publicKey);
  }

  removePeer(publicKey: string): void {
    const key = encodeKey(decodeKey(publicKey, 'peer publicKey'));
    this.open();
    this.peers.delete(key);
    this.removes++;
  }

  peerKeys(): string[] {
    return [...this.peers.keys()];
  }

  allowedIpsOf(publicKey: string): string[] {
    return [...(this.peers.get(publicKey)?.allowedIps ?? [])];
  }

  snapshot(): WireGuardSnapshot {
    return { stats: {} as WireGuardSnapshot['stats'], peers: [], unknownKey: null };
  }

  get closed(): boolean {
    return this.isClosed;
  }

  close(): void {
    this.isClosed = true;
  }
}
