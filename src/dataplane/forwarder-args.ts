/**
 * Argument validation and the control-plane route book shared by NativeForwarder and
 * MemoryForwarder, so both reject the same input with the same TypeError messages; the argument and
 * native-error helpers are the WireGuard device's too.
 */
import { Ip4Net, Ip6Net, tryParseCidr, tryParseIp4 } from '../ip/index.js';
import { WeftError } from '../errors.js';
import type { ForwarderOptions, ForwarderRoute, ForwarderStats } from './forwarder.js';

/** A destination as the native side wants it. */
export interface ParsedDst {
  readonly family: 4 | 6;
  readonly addr: Buffer;
  readonly prefixLen: number;
  /** Canonical CIDR text. */
  readonly cidr: string;
  readonly net: Ip4Net | Ip6Net;
}

export interface ParsedOptions {
  readonly tunFd: number;
  readonly port: number;
  readonly bindIp: Buffer;
  readonly mtu: number;
  readonly local: readonly ParsedDst[];
  readonly maxRoutes: number;
  /** 0 = automatic */
  readonly threads: number;
  readonly nice: number;
}

/** Nice value of the forwarder's loop threads unless the options say otherwise. */
export const DEFAULT_FORWARDER_NICE = -10;

/** Most own subnets (native/include/fwd.h FWD_MAX_LOCAL). */
export const MAX_LOCAL_SUBNETS = 16;
export const DEFAULT_MAX_ROUTES = 1 << 20;

/** An argument as an error message quotes it. */
export function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** `v` when it is an integer in [min, max]; else the TypeError `<name> must be <rule>, got <v>`. */
export function requireInt(
  name: string,
  v: unknown,
  min: number,
  max: number,
  rule: string,
): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
  throw new TypeError(`${name} must be ${rule}, got ${show(v)}`);
}

/** A native call's failure as WeftError E_NATIVE with its errno details. */
export function nativeError(err: unknown, what: string): WeftError {
  const e = err as NodeJS.ErrnoException;
  // the native side may already say what failed ("cannot start the WireGuard device: bind …")
  const message = e.message.startsWith(`${what}: `) ? e.message : `${what}: ${e.message}`;
  return new WeftError('E_NATIVE', message, {
    cause: err,
    details: { code: e.code, errno: e.errno, syscall: e.syscall },
  });
}

export function ip4Bytes(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b;
}

export function ip6Bytes(value: bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(value >> 64n, 0);
  b.writeBigUInt64BE(value & 0xffffffffffffffffn, 8);
  return b;
}

export function parseOptions(opts: ForwarderOptions): ParsedOptions {
  if (typeof opts !== 'object' || opts === null) {
    throw new TypeError('forwarder options must be an object {tunFd, port, mtu, bindAddress?}');
  }
  requireInt('tunFd', opts.tunFd, 0, 0x7fffffff, 'a non-negative integer');
  requireInt('port', opts.port, 0, 65535, 'an integer 0-65535');
  requireInt('mtu', opts.mtu, 576, 65535, 'an integer 576-65535');
  const bind = opts.bindAddress ?? '0.0.0.0';
  const bindIp = typeof bind === 'string' ? tryParseIp4(bind) : null;
  if (bindIp === null) {
    throw new TypeError(
      `bindAddress must be an IPv4 address such as 198.18.0.1, got ${show(opts.bindAddress)}`,
    );
  }
  const maxRoutes = opts.maxRoutes ?? DEFAULT_MAX_ROUTES;
  requireInt('maxRoutes', maxRoutes, 1, 0xffffffff, 'a positive integer');
  if (opts.threads !== undefined && opts.threads !== 1 && opts.threads !== 2) {
    throw new TypeError(`threads must be 1 or 2, got ${show(opts.threads)}`);
  }
  const nice = opts.nice ?? DEFAULT_FORWARDER_NICE;
  requireInt('nice', nice, -20, 19, 'an integer -20..19');
  return {
    tunFd: opts.tunFd,
    port: opts.port,
    mtu: opts.mtu,
    bindIp: ip4Bytes(bindIp),
    local: parseLocal(opts.localSubnets),
    maxRoutes,
    threads: opts.threads ?? 0,
    nice,
  };
}

/** This host's own subnets: an array of at most 16 CIDRs without host bits. */
export function parseLocal(cidrs: unknown): ParsedDst[] {
  if (!Array.isArray(cidrs) || cidrs.length > MAX_LOCAL_SUBNETS) {
    throw new TypeError(
      `localSubnets must be an array of at most ${MAX_LOCAL_SUBNETS} CIDRs (this host's lease subnets), got ${show(cidrs)}`,
    );
  }
  return cidrs.map((c: unknown) => parseDst(c));
}

/** The native encoding of own subnets: 18 bytes each (family, prefix length, 16 address bytes). */
export function localBytes(local: readonly ParsedDst[]): Buffer {
  const b = Buffer.alloc(18 * local.length);
  local.forEach((d, i) => {
    b[i * 18] = d.family;
    b[i * 18 + 1] = d.prefixLen;
    d.addr.copy(b, i * 18 + 2);
  });
  return b;
}

/** Canonical CIDR of a native (family, 16 address bytes, length) triple. */
export function cidrOf(family: number, addr: Buffer, prefixLen: number): string {
  if (family === 4) return `${[...addr.subarray(0, 4)].join('.')}/${prefixLen}`;
  const hi = addr.readBigUInt64BE(0);
  const lo = addr.readBigUInt64BE(8);
  return new Ip6Net((hi << 64n) | lo, prefixLen).toString();
}

export function parseDst(dst: unknown): ParsedDst {
  const net = typeof dst === 'string' ? tryParseCidr(dst) : null;
  if (net === null) {
    throw new TypeError(`dst must be an IPv4 or IPv6 CIDR such as 10.244.2.0/24, got ${show(dst)}`);
  }
  const strict = tryParseCidr(dst as string, { strict: true });
  if (strict === null) {
    throw new TypeError(`dst ${show(dst)} has host bits set: use ${net.toString()}`);
  }
  if (net instanceof Ip4Net) {
    return {
      family: 4,
      addr: ip4Bytes(net.ip),
      prefixLen: net.prefixLen,
      cidr: net.toString(),
      net,
    };
  }
  return { family: 6, addr: ip6Bytes(net.ip), prefixLen: net.prefixLen, cidr: net.toString(), net };
}

export function parsePeer(peerIp: unknown, port: unknown): { peer: Buffer; ip: number } {
  const ip = typeof peerIp === 'string' ? tryParseIp4(peerIp) : null;
  if (ip === null) {
    throw new TypeError(`peerIp must be an IPv4 address such as 198.18.0.2, got ${show(peerIp)}`);
  }
  requireInt('port', port, 1, 65535, 'an integer 1-65535');
  return { peer: ip4Bytes(ip), ip };
}

export function closedError(op: string): WeftError {
  return new WeftError('E_NATIVE', `forwarder is closed: cannot ${op}`, {
    details: { code: 'ESHUTDOWN', syscall: op },
  });
}

/** The control plane's view of the routes: what was set, keyed by canonical dst. */
export class RouteBook {
  private readonly byDst = new Map<string, ForwarderRoute>();

  set(dst: string, peerIp: string, port: number): void {
    this.byDst.set(dst, { dst, peerIp, port });
  }

  delete(dst: string): boolean {
    return this.byDst.delete(dst);
  }

  get(dst: string): ForwarderRoute | undefined {
    return this.byDst.get(dst);
  }

  list(): readonly ForwarderRoute[] {
    return [...this.byDst.values()].sort((a, b) => (a.dst < b.dst ? -1 : a.dst > b.dst ? 1 : 0));
  }

  get size(): number {
    return this.byDst.size;
  }
}

export const ZERO_DROPS = Object.freeze({
  noRoute: 0,
  unknownPeer: 0,
  badInnerSource: 0,
  badInnerDest: 0,
  badChecksum: 0,
  congested: 0,
  malformed: 0,
  ttl: 0,
  unsupported: 0,
  tunWrite: 0,
  udpSend: 0,
});

/** Names of the offloads that are off. */
export function fallbackOf(stats: ForwarderStats): string[] {
  return (Object.entries(stats.offloads) as [string, boolean][])
    .filter(([, on]) => !on)
    .map(([name]) => name);
}

/** A route the forwarder could not insert. */
export interface RouteFailure {
  readonly dst: string;
  readonly code: string;
}

/** The error `settled()` rejects with after failed route inserts. */
export function routeFailureError(failures: readonly RouteFailure[]): WeftError {
  const shown = failures
    .slice(0, 5)
    .map((f) => `${f.dst} (${f.code})`)
    .join(', ');
  const more = failures.length > 5 ? ` and ${failures.length - 5} more` : '';
  return new WeftError(
    'E_NATIVE',
    `forwarder could not insert ${failures.length} route(s): ${shown}${more}; they are left out of routes() so the next resync sets them again`,
    {
      details: { code: failures[0]?.code, routes: failures.map((f) => f.dst) },
      retryable: true,
    },
  );
}

/** Polls `applied()` until it reaches `target` (or throws what `failure()` returns). */
export async function waitApplied(
  target: number,
  applied: () => number,
  failure: () => Error | undefined,
  timeoutMs: number,
): Promise<void> {
  // Elapsed time: with Date.now(), a wall clock stepped back would stretch this 1 ms poll by the step.
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const err = failure();
    if (err) throw err;
    if (applied() >= target) return;
    if (performance.now() > deadline) {
      throw new WeftError(
        'E_NATIVE',
        `forwarder did not apply its route commands in ${timeoutMs} ms`,
        {
          details: { code: 'ETIMEDOUT' },
          retryable: true,
        },
      );
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}
