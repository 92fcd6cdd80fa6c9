/** Opening TUN devices through the native addon (the UDP forwarder's and WireGuard engine's I/O). */
import { closeSync } from 'node:fs';
import { WeftError } from '../errors.js';
import { loadNative } from '../native/binding.js';

export interface TunOptions {
  /** virtio-net header on every packet (needed for TSO/GSO offloads). */
  vnetHdr?: boolean;
  /** Attach one more queue of a multi-queue TUN. */
  multiQueue?: boolean;
  /**
   * Make the device persistent (TUNSETPERSIST): it keeps its address and routes when the fd closes,
   * and a later openTun with the same name and flags attaches to it again. Remove it with
   * `ip link del`.
   */
  persist?: boolean;
}

export interface OpenedTun {
  /** Non-blocking, close-on-exec fd; the caller owns it (fs.closeSync when done). */
  readonly fd: number;
  /** The interface name the kernel gave (same as asked unless a `%d` pattern was used). */
  readonly name: string;
}

const IFNAME = /^[A-Za-z0-9_.%-]{1,15}$/;

/**
 * Opens (creating if absent) the TUN interface `name` with IFF_TUN|IFF_NO_PI. Errors are
 * WeftError E_NATIVE with `details.code` ('EPERM', 'EBUSY', …), `errno` and `syscall`.
 */
export function openTun(name: string, options: TunOptions = {}): OpenedTun {
  if (typeof name !== 'string' || !IFNAME.test(name)) {
    throw new TypeError(
      `TUN name must be 1-15 characters of [A-Za-z0-9_.%-], got ${JSON.stringify(name)}`,
    );
  }
  try {
    return loadNative().openTun(
      name,
      options.vnetHdr ?? false,
      options.multiQueue ?? false,
      options.persist ?? false,
    );
  } catch (err) {
    if (err instanceof WeftError) throw err;
    const e = err as NodeJS.ErrnoException;
    // the addon's message already reads "cannot open TUN device <name>: <syscall> <errno>"
    const prefix = `cannot open TUN device ${name}`;
    const message = e.message.startsWith(prefix) ? e.message : `${prefix}: ${e.message}`;
    throw new WeftError('E_NATIVE', message, {
      cause: err,
      details: { code: e.code, errno: e.errno, syscall: e.syscall, tun: name },
    });
  }
}

/**
 * Opens (or re-attaches to) the persistent TUN `name` with a virtio-net header and hands its fd to
 * `start` (a native loop that takes it over); the fd is closed when `start` throws. `enter` runs the
 * open in the host's network namespace (src/netns, which this layer may not import).
 */
export function startOnTun<T>(
  name: string,
  start: (fd: number) => T,
  enter: (open: () => T) => T = (open) => open(),
): T {
  return enter(() => {
    const tun = openTun(name, { vnetHdr: true, persist: true });
    try {
      return start(tun.fd);
    } catch (err) {
      closeSync(tun.fd); // start failed: the fd is still ours
      throw err;
    }
  });
}

/** True for a native loop's fatal error (the UDP forwarder's or the WireGuard engine's) when its TUN
 *  was deleted (`ip link del`): the read of a TUN fd whose interface is gone fails with EBADFD. */
export function isTunDeleted(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; syscall?: unknown; details?: Record<string, unknown> };
  const code = e.details?.code ?? e.code;
  const syscall = e.details?.syscall ?? e.syscall;
  return code === 'EBADFD' && syscall === 'read';
}
