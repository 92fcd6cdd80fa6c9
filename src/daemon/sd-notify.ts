/**
 * weftd's systemd notifications (docs/systemd.md): `READY=1` at the moment /readyz turns 200 (subnet.env,
 * the device and the rules are in place), `STATUS=` lines for `systemctl status`, `STOPPING=1` on the way
 * out, and `WATCHDOG=1` pings when the unit sets WatchdogSec=. Sent by the native addon's sd_notify
 * (native/src/sd_notify.c; Node has no AF_UNIX datagram sockets). Without NOTIFY_SOCKET (not started by
 * systemd, or Type= is not notify) every call is a no-op.
 */
import { loadNative } from '../native/binding.js';
import type { Logger } from '../log/logger.js';

/** What the daemon tells its service manager. Every method is safe to call at any time. */
export interface ServiceNotifier {
  /** READY=1 with a status line; sent once. */
  ready(status: string): void;
  /** STATUS=<text> (one line). */
  status(text: string): void;
  /** STOPPING=1; sent once; stops the watchdog pings. */
  stopping(status?: string): void;
}

/** Sends one notification datagram (the addon's sdNotify). */
export type NotifySend = (path: string, message: string) => void;

export interface NotifierOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly log: Logger;
  /** Defaults to the native addon's sdNotify (loaded only when NOTIFY_SOCKET is set). */
  readonly send?: NotifySend;
  readonly pid?: number;
}

export const NO_NOTIFIER: ServiceNotifier = { ready() {}, status() {}, stopping() {} };

/** One line, no control characters (a STATUS= value ends at the newline). */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 400);
}

/**
 * The watchdog interval systemd asks for (WATCHDOG_USEC, only if WATCHDOG_PID is unset or ours), in ms;
 * null without a watchdog.
 */
export function watchdogMs(
  env: Readonly<Record<string, string | undefined>>,
  pid: number,
): number | null {
  const usec = env['WATCHDOG_USEC'];
  if (!usec || !/^\d{1,15}$/.test(usec) || Number(usec) === 0) return null;
  const owner = env['WATCHDOG_PID'];
  if (owner !== undefined && owner !== '' && owner !== String(pid)) return null;
  return Math.max(1, Math.floor(Number(usec) / 1000));
}

function loadSend(): NotifySend {
  const addon = loadNative();
  return (path, message) => addon.sdNotify(path, message);
}

/**
 * The notifier for NOTIFY_SOCKET in `env` (NO_NOTIFIER without it). Removes NOTIFY_SOCKET and the
 * WATCHDOG_* variables from `env` when it is process.env, so the tools weftd runs do not inherit them.
 * A failed send is logged (rate-limited by the caller's logger), never thrown.
 */
export function createServiceNotifier(opts: NotifierOptions): ServiceNotifier {
  const path = opts.env['NOTIFY_SOCKET'];
  if (!path) return NO_NOTIFIER;
  const pid = opts.pid ?? process.pid;
  const wdMs = watchdogMs(opts.env, pid);
  if (opts.env === process.env) {
    delete process.env['NOTIFY_SOCKET'];
    delete process.env['WATCHDOG_USEC'];
    delete process.env['WATCHDOG_PID'];
  }
  let send: NotifySend;
  try {
    send = opts.send ?? loadSend();
  } catch (err) {
    opts.log.warn('cannot notify systemd: the native addon is not available', {
      error: (err as Error).message,
    });
    return NO_NOTIFIER;
  }
  let failures = 0;
  const notify = (message: string): void => {
    try {
      send(path, message);
    } catch (err) {
      if (failures++ < 3)
        opts.log.warn('sd_notify failed', { socket: path, error: (err as Error).message });
    }
  };
  let timer: NodeJS.Timeout | null = null;
  if (wdMs !== null) {
    // WATCHDOG=1 at half the interval, from a timer: it fires only while the event loop turns, which is
    // what every part of weftd (watch, lease renewal, resync, health server) needs to be alive.
    timer = setInterval(() => notify('WATCHDOG=1'), Math.max(1, Math.floor(wdMs / 2)));
    timer.unref();
  }
  let readySent = false;
  let stoppingSent = false;
  return {
    ready(status) {
      if (readySent || stoppingSent) return;
      readySent = true;
      notify(`READY=1\nSTATUS=${oneLine(status)}`);
    },
    status(text) {
      if (!stoppingSent) notify(`STATUS=${oneLine(text)}`);
    },
    stopping(status = 'stopping: the lease, device, routes and rules stay in place') {
      if (stoppingSent) return;
      stoppingSent = true;
      if (timer) clearInterval(timer);
      notify(`STOPPING=1\nSTATUS=${oneLine(status)}`);
    },
  };
}
