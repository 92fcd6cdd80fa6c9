/**
 * The only loader of weft's native addon (docs/design.md C9) and the only place where its untyped values
 * are seen. Everything else imports the typed functions below.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WeftError } from '../errors.js';

/** Counters both native loops keep (the TUN/UDP path, commands, offloads), camelCased by the addons. */
type NativeLoopStatKey =
  | 'txPackets'
  | 'txBytes'
  | 'rxPackets'
  | 'rxBytes'
  | 'tunReads'
  | 'tunWrites'
  | 'tsoPackets'
  | 'gsoSends'
  | 'groReceives'
  | 'coalescedWrites'
  | 'dropNoRoute'
  | 'dropMalformed'
  | 'dropUnsupported'
  | 'dropTunWrite'
  | 'dropUdpSend'
  | 'commandsQueued'
  | 'commandsApplied'
  | 'offVnetHdr'
  | 'offTso'
  | 'offUdpGso'
  | 'offUdpGro'
  | 'running'
  | 'fatalErrno';

/** Flat counters of native/include/fwd.h `struct fwd_stats`, camelCased by addon.cc. */
export type NativeForwarderStatKey =
  | NativeLoopStatKey
  | 'icmpSent'
  | 'dropUnknownPeer'
  | 'dropBadInnerSource'
  | 'dropTtl'
  | 'dropBadInnerDest'
  | 'dropBadChecksum'
  | 'dropCongested'
  | 'commandsFailed'
  | 'peerSockets'
  | 'routes'
  | 'threads';

/** A route command the native loop could not apply. */
export interface NativeRouteFailure {
  readonly family: number;
  /** 16 bytes (IPv4: the first 4). */
  readonly addr: Buffer;
  readonly prefixLen: number;
  /** 'ENOMEM' | 'ENOSPC' */
  readonly code: string;
  readonly errno: number;
}

/** One native forwarder (native/src/fwd_loop.c through addon.cc); arguments checked by the caller. */
export interface NativeForwarderHandle {
  setRoute(family: 4 | 6, addr: Buffer, prefixLen: number, peerIp: Buffer, port: number): void;
  deleteRoute(family: 4 | 6, addr: Buffer, prefixLen: number): void;
  /** Own subnets, 18 bytes each: family, prefix length, 16 address bytes. */
  setLocalSubnets(prefixes: Buffer): void;
  /** Route commands the loop could not apply since the last call (each reported once). */
  takeFailures(): NativeRouteFailure[];
  stats(): Readonly<Record<NativeForwarderStatKey, number>>;
  localPort(): number;
  /** Stops and joins the loop thread; closes the TUN fd and the socket. Idempotent. */
  close(): void;
}

/** Counters of native/include/wg_loop.h `struct wgl_stats`, camelCased by wg_addon.cc. */
export type NativeWgStatKey =
  | NativeLoopStatKey
  | 'rxHandshake'
  | 'txHandshake'
  | 'rxCookie'
  | 'txCookie'
  | 'underLoad'
  | 'dropNoSession'
  | 'dropMac1'
  | 'dropUnknownKey'
  | 'dropHandshake'
  | 'dropRatelimited'
  | 'dropStale'
  | 'dropDecrypt'
  | 'dropReplay'
  | 'dropAllowedIps'
  | 'peers'
  | 'allowedIps';

/** One peer in a WireGuard device snapshot (`struct wgl_peer_info`). */
export interface NativeWgPeer {
  readonly publicKey: Buffer;
  readonly endpointFamily: 0 | 4 | 6;
  readonly endpointAddr: Buffer | null;
  readonly endpointPort: number;
  readonly hasSession: boolean;
  readonly keepalive: number;
  readonly lastHandshakeSec: number;
  readonly rxBytes: number;
  readonly txBytes: number;
  readonly rxPackets: number;
  readonly txPackets: number;
  readonly handshakes: number;
  readonly handshakeInitiations: number;
  readonly dropAllowedIps: number;
  readonly dropReplay: number;
}

export interface NativeWgSnapshot {
  readonly stats: Readonly<Record<NativeWgStatKey, number>>;
  readonly peers: readonly NativeWgPeer[];
  /** The most recent handshake from a static key that is no peer (for `doctor`). */
  readonly unknownKey: {
    readonly family: 4 | 6;
    readonly addr: Buffer;
    readonly port: number;
    readonly publicKey: Buffer;
    readonly ageMs: number;
  } | null;
  /** false when the loop did not answer in time (counters are the last known). */
  readonly fresh: boolean;
}

/** One WireGuard device loop (native/src/wg_loop.c through wg_addon.cc); arguments checked by the
 *  caller (src/dataplane/wireguard-device.ts). */
export interface NativeWgDeviceHandle {
  setPeer(
    publicKey: Buffer,
    psk: Buffer | null,
    endpointFamily: 0 | 4 | 6,
    endpointAddr: Buffer | null,
    endpointPort: number,
    keepalive: number,
  ): void;
  deletePeer(publicKey: Buffer): void;
  /** Handshake now unless a session exists. */
  initiate(publicKey: Buffer): void;
  setAllowedIp(publicKey: Buffer, family: 4 | 6, addr: Buffer, prefixLen: number): void;
  deleteAllowedIp(family: 4 | 6, addr: Buffer, prefixLen: number): void;
  snapshot(): NativeWgSnapshot;
  publicKey(): Buffer;
  localPort(): number;
  /** Stops and joins the loop thread; closes the TUN fd and the socket; wipes the key. Idempotent. */
  close(): void;
}

/** The native rtnetlink sender (native/src/rtnl_sender.c through rtnl_sender_napi.cc; its one user is
 *  src/netlink/native-sender.ts). */
export interface NativeRtnlSenderHandle {
  /** Queues complete netlink requests (copied) as submission `id`; returns their count. Throws an
   *  errno error: EINVAL (bad framing), EPIPE (socket lost or sender closed). */
  submit(requests: Buffer, id: number): number;
  /** True once the socket failed or the sender was closed. */
  lost(): boolean;
  /** Keep the process alive while submissions are outstanding (unref'd when created). */
  ref(): void;
  unref(): void;
  /** Stops and joins the thread; what was unanswered is reported failed. Idempotent. */
  close(): void;
}

/** The addon's surface, as built from native/src/addon.cc. */
export interface NativeAddon {
  /** Starts a forwarder; its UDP socket is created in the calling thread's network namespace.
   *  `onFatal` runs on the main thread if the loop stops by itself (errno-shaped error). */
  Forwarder: new (
    tunFd: number,
    bindIp: Buffer,
    port: number,
    mtu: number,
    onFatal: (err: Error) => void,
    maxRoutes?: number,
    threads?: number,
    nice?: number,
  ) => NativeForwarderHandle;
  openTun(
    name: string,
    vnetHdr: boolean,
    multiQueue: boolean,
    persist?: boolean,
  ): { fd: number; name: string };
  /** setns(2) for the calling (main) thread. */
  setns(fd: number, nstype: number): void;
  /** flock(2) with LOCK_NB (LOCK_EX or LOCK_SH): true taken, false held elsewhere; throws with errno. */
  tryFlock(fd: number, exclusive: boolean): boolean;
  /** One sd_notify(3) datagram to NOTIFY_SOCKET's `path` ('/…' or abstract '@…'); throws with errno. */
  sdNotify(path: string, message: string): void;
  /** Starts a WireGuard device loop; its UDP socket is created in the calling thread's netns. */
  WgDevice: new (
    tunFd: number,
    family: 4 | 6,
    bindIp: Buffer,
    port: number,
    mtu: number,
    privateKey: Buffer,
    loadThreshold: number,
    onFatal: (err: Error) => void,
  ) => NativeWgDeviceHandle;
  /** Opens a NETLINK_ROUTE socket in the calling thread's netns and starts the sender thread.
   *  `onDone(id, results)` runs on the main thread once a submission is answered: results null (all
   *  succeeded) or one code per request (0, a kernel errno, 0x10000|errno: no answer by the deadline,
   *  0x20000|errno: socket lost). */
  RtnlSender: new (
    perSend: number,
    timeoutMs: number,
    onDone: (id: number, results: Int32Array | null) => void,
  ) => NativeRtnlSenderHandle;
  /** A fresh X25519 private key (libsodium's CSPRNG), clamped. */
  wgGenerateKey(): Buffer;
  /** The X25519 public key of a private key. */
  wgPublicKey(privateKey: Buffer): Buffer;
}

let cached: NativeAddon | undefined;

function candidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/native (tsx/vitest) and dist/native (built) both sit two levels below the package root.
  const root = join(here, '..', '..');
  const out = [
    join(root, 'native', 'build', 'Release', 'weft_native.node'),
    // the Debian package's layout: the addon beside the executable (scripts/package.mjs)
    join(root, 'weft_native.node'),
  ];
  const override = process.env['WEFT_NATIVE_ADDON'];
  return override ? [override, ...out] : out;
}

/** Loads the addon once; throws E_NATIVE_UNAVAILABLE naming the fix when it was not built. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  const found = candidates().find((p) => existsSync(p));
  if (!found) {
    throw new WeftError(
      'E_NATIVE_UNAVAILABLE',
      `native addon not built (looked in ${candidates().join(', ')}): run \`npm run build:native\``,
    );
  }
  const require = createRequire(import.meta.url);
  cached = require(found) as NativeAddon;
  return cached;
}
