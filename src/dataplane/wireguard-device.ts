/**
 * The userspace WireGuard engine (native/src/wg_loop.c: protocol in native/src/wg_*.c), loaded through
 * src/native/binding.ts only. Every argument is validated here before anything reaches C; keys cross as
 * base64 strings (wg(8)'s format) and are turned into bytes here. The device keeps a book of the
 * peers and allowed IPs it programmed so `setPeer` can reconcile one peer's allowed IPs.
 *
 * Lifecycle: `start` opens the loop on a TUN fd it takes over (closed by `close`); the loop thread is
 * joined by `close`. A fatal loop error is emitted once as 'error' (logged when nobody listens).
 */
import { EventEmitter } from 'node:events';
import { WeftError } from '../errors.js';
import { formatIp4, formatIp6, tryParseIp4, tryParseIp6 } from '../ip/index.js';
import type { Logger } from '../log/logger.js';
import { ip4Bytes, ip6Bytes, nativeError, parseDst, requireInt, show } from './forwarder-args.js';
import { isTunDeleted } from './tun.js';
import {
  loadNative,
  type NativeWgDeviceHandle,
  type NativeWgPeer,
  type NativeWgSnapshot,
  type NativeWgStatKey,
} from '../native/binding.js';

export const WG_KEY_BYTES = 32;
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/;

/** Decodes a base64 WireGuard key (44 characters, 32 bytes); throws a TypeError naming `what`. */
export function decodeKey(text: unknown, what: string): Buffer {
  if (typeof text !== 'string' || !BASE64_KEY.test(text)) {
    throw new TypeError(
      `${what} must be a base64 WireGuard key (44 characters, as \`wg genkey\` prints)`,
    );
  }
  const b = Buffer.from(text, 'base64');
  if (b.length !== WG_KEY_BYTES) throw new TypeError(`${what} must decode to 32 bytes`);
  return b;
}

export function encodeKey(key: Buffer): string {
  return key.toString('base64');
}

/** A fresh X25519 private key (32 bytes, clamped) from libsodium's CSPRNG. */
export function generatePrivateKey(): Buffer {
  return loadNative().wgGenerateKey();
}

/** The base64 public key of a 32-byte private key. */
export function publicKeyOf(privateKey: Buffer): string {
  if (!Buffer.isBuffer(privateKey) || privateKey.length !== WG_KEY_BYTES) {
    throw new TypeError('private key must be 32 bytes');
  }
  return encodeKey(loadNative().wgPublicKey(privateKey));
}

export interface WireGuardDeviceOptions {
  /** TUN fd (IFF_TUN|IFF_NO_PI, vnet header recommended); owned by the device after start. */
  readonly tunFd: number;
  /** Underlay family of the UDP socket. */
  readonly family: 4 | 6;
  /** Bind address (default: any). */
  readonly bindAddress?: string;
  /** UDP port; 0 = ephemeral (tests). */
  readonly port: number;
  /** MTU of the TUN device. */
  readonly mtu: number;
  /** 32-byte X25519 private key (the device keeps a copy, wiped on close). */
  readonly privateKey: Buffer;
  /** Handshake messages per second before cookies are required (default 64). */
  readonly loadThreshold?: number;
}

export interface WireGuardEndpoint {
  readonly address: string;
  readonly port: number;
}

export interface WireGuardPeerSpec {
  /** base64 */
  readonly publicKey: string;
  /** base64, or null/undefined for none */
  readonly presharedKey?: string | null;
  readonly endpoint?: WireGuardEndpoint | null;
  /** PersistentKeepalive in seconds (0 = off). */
  readonly persistentKeepalive?: number;
  /** CIDRs whose packets go to this peer and which it may use as inner source. */
  readonly allowedIps: readonly string[];
}

/** A peer's counters as the engine reports them (`lastHandshakeSec`: wall clock, 0 = never), with its
 *  key in base64 and its endpoint as text. */
export interface WireGuardPeerStatus extends Omit<
  NativeWgPeer,
  'publicKey' | 'endpointFamily' | 'endpointAddr' | 'endpointPort' | 'keepalive'
> {
  readonly publicKey: string;
  /** `address:port` (IPv6 in brackets), or null before the first endpoint. */
  readonly endpoint: string | null;
  readonly persistentKeepalive: number;
}

export type WireGuardStats = Readonly<Record<NativeWgStatKey, number>>;

export interface WireGuardSnapshot {
  readonly stats: WireGuardStats;
  readonly peers: readonly WireGuardPeerStatus[];
  /** The last handshake from a key that is no peer: who sent it and which key it used. */
  readonly unknownKey: {
    readonly endpoint: string;
    readonly publicKey: string;
    readonly ageMs: number;
  } | null;
}

function addrBytes(text: string, family: 4 | 6, what: string): Buffer {
  if (family === 4) {
    const v = tryParseIp4(text);
    if (v === null) throw new TypeError(`${what} must be an IPv4 address, got ${show(text)}`);
    return ip4Bytes(v);
  }
  const v = tryParseIp6(text);
  if (v === null) throw new TypeError(`${what} must be an IPv6 address, got ${show(text)}`);
  return ip6Bytes(v);
}

function formatEndpoint(family: number, addr: Buffer | null, port: number): string | null {
  if (!addr || (family !== 4 && family !== 6)) return null;
  if (family === 4) return `${formatIp4(addr.readUInt32BE(0))}:${port}`;
  const v = (addr.readBigUInt64BE(0) << 64n) | addr.readBigUInt64BE(8);
  return `[${formatIp6(v)}]:${port}`;
}

/**
 * A peer spec checked and in the engine's terms (TypeError naming the field otherwise): keys decoded,
 * the endpoint in the device's family, allowed IPs as canonical CIDRs. Pure; test/fakes' device uses it
 * too, so the fake refuses what the engine refuses.
 */
export function checkPeerSpec(spec: WireGuardPeerSpec, family: 4 | 6) {
  const pub = decodeKey(spec.publicKey, 'peer publicKey');
  const psk =
    spec.presharedKey === undefined || spec.presharedKey === null
      ? null
      : decodeKey(spec.presharedKey, 'presharedKey');
  const ka = spec.persistentKeepalive ?? 0;
  requireInt('persistentKeepalive', ka, 0, 65535, '0-65535 seconds');
  let fam: 0 | 4 | 6 = 0;
  let addr: Buffer | null = null;
  let port = 0;
  if (spec.endpoint) {
    requireInt('endpoint port', spec.endpoint.port, 1, 65535, '1-65535');
    fam = family;
    addr = addrBytes(spec.endpoint.address, family, 'endpoint address');
    port = spec.endpoint.port;
  }
  return { pub, psk, fam, addr, port, ka, dsts: spec.allowedIps.map((c) => parseDst(c)) };
}

export interface WireGuardDeviceDeps {
  readonly log?: Logger;
}

export class WireGuardDevice extends EventEmitter {
  readonly publicKey: string;
  readonly localPort: number;
  readonly family: 4 | 6;
  private handle: NativeWgDeviceHandle | null;
  /** publicKey → allowed CIDRs programmed */
  private readonly book = new Map<string, Set<string>>();

  private constructor(handle: NativeWgDeviceHandle, family: 4 | 6) {
    super();
    this.handle = handle;
    this.family = family;
    this.publicKey = encodeKey(handle.publicKey());
    this.localPort = handle.localPort();
  }

  /** Starts the loop; its UDP socket is created in the calling thread's network namespace. */
  static start(opts: WireGuardDeviceOptions, deps: WireGuardDeviceDeps = {}): WireGuardDevice {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('options must be an object');
    requireInt('tunFd', opts.tunFd, 0, 0x7fffffff, 'a non-negative integer');
    if (opts.family !== 4 && opts.family !== 6) {
      throw new TypeError(`family must be 4 or 6, got ${show(opts.family)}`);
    }
    requireInt('port', opts.port, 0, 65535, 'an integer 0-65535');
    requireInt('mtu', opts.mtu, 576, 65535, 'an integer 576-65535');
    if (!Buffer.isBuffer(opts.privateKey) || opts.privateKey.length !== WG_KEY_BYTES) {
      throw new TypeError('privateKey must be a 32-byte Buffer');
    }
    const threshold = opts.loadThreshold ?? 0;
    requireInt('loadThreshold', threshold, 0, 1_000_000, 'an integer 0-1000000');
    const bind =
      opts.bindAddress === undefined
        ? Buffer.alloc(opts.family === 4 ? 4 : 16)
        : addrBytes(opts.bindAddress, opts.family, 'bindAddress');
    const native = loadNative();
    let dev: WireGuardDevice | null = null;
    const onFatal = (err: NodeJS.ErrnoException): void => {
      // the native message already reads "WireGuard device stopped: <syscall> <errno> (…)"
      const e = new WeftError(
        'E_NATIVE',
        isTunDeleted(err)
          ? `${err.message}: its TUN device was deleted (ip link del)`
          : err.message,
        { cause: err, details: { code: err.code, errno: err.errno, syscall: err.syscall } },
      );
      // a listener decides (the backend recreates a deleted TUN, or ends weftd with the error)
      if (dev && dev.listenerCount('error') > 0) dev.emit('error', e);
      else deps.log?.error('wireguard device stopped', { err: e.message });
    };
    let handle: NativeWgDeviceHandle;
    try {
      handle = new native.WgDevice(
        opts.tunFd,
        opts.family,
        bind,
        opts.port,
        opts.mtu,
        opts.privateKey,
        threshold,
        onFatal,
      );
    } catch (err) {
      throw nativeError(err, 'cannot start the WireGuard device');
    }
    dev = new WireGuardDevice(handle, opts.family);
    return dev;
  }

  private h(): NativeWgDeviceHandle {
    if (!this.handle) throw new WeftError('E_NATIVE', 'WireGuard device is closed');
    return this.handle;
  }

  /** Adds or updates a peer and makes its allowed IPs exactly `spec.allowedIps`. */
  setPeer(spec: WireGuardPeerSpec): void {
    const { pub, psk, fam, addr, port, ka, dsts } = checkPeerSpec(spec, this.family);
    const key = encodeKey(pub);
    const h = this.h();
    try {
      h.setPeer(pub, psk, fam, addr, port, ka);
      const had = this.book.get(key) ?? new Set<string>();
      const want = new Set(dsts.map((d) => d.cidr));
      for (const cidr of had) {
        if (!want.has(cidr)) {
          const d = parseDst(cidr);
          h.deleteAllowedIp(d.family, d.addr, d.prefixLen);
        }
      }
      for (const d of dsts) {
        // another peer's claim on the same prefix moves to this one (native side does the same)
        for (const [k, set] of this.book) if (k !== key) set.delete(d.cidr);
        h.setAllowedIp(pub, d.family, d.addr, d.prefixLen);
      }
      this.book.set(key, want);
    } catch (err) {
      throw err instanceof TypeError ? err : nativeError(err, 'cannot program WireGuard peer');
    }
  }

  /** Starts a handshake with the peer now unless it has a session (announces a restarted host). */
  initiate(publicKey: string): void {
    const pub = decodeKey(publicKey, 'peer publicKey');
    try {
      this.h().initiate(pub);
    } catch (err) {
      throw nativeError(err, 'cannot start a WireGuard handshake');
    }
  }

  removePeer(publicKey: string): void {
    const pub = decodeKey(publicKey, 'peer publicKey');
    try {
      this.h().deletePeer(pub); // also drops its allowed IPs
    } catch (err) {
      throw nativeError(err, 'cannot remove WireGuard peer');
    }
    this.book.delete(encodeKey(pub));
  }

  /** Public keys of the peers programmed through this object. */
  peerKeys(): string[] {
    return [...this.book.keys()];
  }

  /** Allowed IPs programmed for a peer. */
  allowedIpsOf(publicKey: string): string[] {
    return [...(this.book.get(publicKey) ?? [])];
  }

  /** A consistent copy of the counters and peers (the loop answers within a second). */
  snapshot(): WireGuardSnapshot {
    let s: NativeWgSnapshot;
    try {
      s = this.h().snapshot();
    } catch (err) {
      throw nativeError(err, 'cannot read the WireGuard device');
    }
    return {
      stats: s.stats,
      peers: s.peers.map((p) => ({
        publicKey: encodeKey(p.publicKey),
        endpoint: formatEndpoint(p.endpointFamily, p.endpointAddr, p.endpointPort),
        hasSession: p.hasSession,
        persistentKeepalive: p.keepalive,
        lastHandshakeSec: p.lastHandshakeSec,
        rxBytes: p.rxBytes,
        txBytes: p.txBytes,
        rxPackets: p.rxPackets,
        txPackets: p.txPackets,
        handshakes: p.handshakes,
        handshakeInitiations: p.handshakeInitiations,
        dropAllowedIps: p.dropAllowedIps,
        dropReplay: p.dropReplay,
      })),
      unknownKey: s.unknownKey
        ? {
            endpoint:
              formatEndpoint(s.unknownKey.family, s.unknownKey.addr, s.unknownKey.port) ?? '',
            publicKey: encodeKey(s.unknownKey.publicKey),
            ageMs: s.unknownKey.ageMs,
          }
        : null,
    };
  }

  get closed(): boolean {
    return this.handle === null;
  }

  /** Stops and joins the loop; closes the TUN fd and the socket. Idempotent. */
  close(): void {
    const h = this.handle;
    this.handle = null;
    h?.close();
  }
}
