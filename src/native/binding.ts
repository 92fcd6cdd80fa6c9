/**
 * The only loader of weft's native addon (design.md C9) and the only place where its untyped values
 * are seen. Everything else imports the typed functions below.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WeftError } from '../errors.js';

/** Flat counters of native/include/fwd.h `struct fwd_stats`, camelCased by addon.cc. */
export type NativeForwarderStatKey =
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
  | 'icmpSent'
  | 'dropNoRoute'
  | 'dropUnknownPeer'
  | 'dropBadInnerSource'
  | 'dropMalformed'
  | 'dropTtl'
  | 'dropUnsupported'
  | 'dropTunWrite'
  | 'dropUdpSend'
  | 'dropBadInnerDest'
  | 'dropBadChecksum'
  | 'dropCongested'
  | 'commandsQueued'
  | 'commandsApplied'
  | 'commandsFailed'
  | 'peerSockets'
  | 'routes'
  | 'offVnetHdr'
  | 'offTso'
  | 'offUdpGso'
  | 'offUdpGro'
  | 'threads'
  | 'running'
  | 'fatalErrno';

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
  /** One sd_notify(3) datagram to NOTIFY_SOCKET's `path` ('/…' or abstract '@…'); throws with errno. */
  sdNotify(path: string, message: string): void;
}

let cached: NativeAddon | undefined;

function candidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/dataplane (tsx/vitest) and dist/dataplane (built) both sit two levels below the package root.
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
