/**
 * weftd's CNI socket (README.md "CNI plugin"): the `weft` plugin a runtime execs is a small C shim
 * (cni-shim/) that hands each call here; weftd runs the plugin logic in-process (src/cni/in-process.ts,
 * the same dispatcher as the standalone plugin, exec'ing only the reference delegates) and sends back
 * stdout, stderr and the exit code for the shim to relay. That removes a Node start from every CNI call.
 *
 * Hostile clients: the socket is 0600 in a root-owned directory and every connection is checked with
 * SO_PEERCRED (uid 0 only); a caller in another network namespace is told to fall back (the delegates
 * would otherwise act in weftd's namespace, not the caller's). The request must arrive whole within
 * REQUEST_TIMEOUT_MS and within the wire limits (cni-wire.ts); at most MAX_CONNECTIONS at once; any
 * error ends that connection only. Calls for one container are serialised (cni-locks.ts).
 */
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { runInProcess } from '../cni/in-process.js';
import { describeError } from '../errors.js';
import { rateLimited, type Logger } from '../log/logger.js';
import { CniLocks } from './cni-locks.js';
import { loadPeerCred, type PeerCred } from './cni-peercred.js';
import {
  decodeRequest,
  encodeReply,
  ReplyStatus,
  requestLength,
  type CniRequest,
} from './cni-wire.js';

export const REQUEST_TIMEOUT_MS = 10_000;
export const MAX_CONNECTIONS = 64;
/** How long close() waits for calls in progress before cutting them (their shims then fall back). */
const DRAIN_MS = 5_000;

export interface CniServer {
  readonly path: string;
  close(): Promise<void>;
}

export interface CniServerOptions {
  readonly path: string;
  readonly log: Logger;
  /** For tests: replaces SO_PEERCRED. */
  readonly peerCred?: (fd: number) => PeerCred;
}

/** Starts the server, or returns null (logged) when it cannot run; weftd works on without it. */
export async function startCniServer(o: CniServerOptions): Promise<CniServer | null> {
  const log = o.log;
  const peerCred = o.peerCred ?? loadPeerCred();
  if (peerCred instanceof Error) {
    log.warn(
      'CNI socket off: the peer credential check is unavailable; the plugin runs standalone',
      {
        error: peerCred.message,
      },
    );
    return null;
  }
  try {
    mkdirSync(dirname(o.path), { recursive: true, mode: 0o755 });
    if (!(await claimPath(o.path))) {
      log.error('CNI socket off: another process serves it', { path: o.path });
      return null;
    }
  } catch (err) {
    log.error('CNI socket off', { path: o.path, error: describeError(err) });
    return null;
  }
  const ownNetns = statSync('/proc/self/ns/net');
  const noisy = rateLimited(log, 60_000, 3);
  const locks = new CniLocks();
  const sockets = new Set<Socket>();
  const inflight = new Set<Promise<void>>();

  const server: Server = createServer({ allowHalfOpen: true }, (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let cred: PeerCred;
    try {
      const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (typeof fd !== 'number' || fd < 0) throw new Error('no file descriptor');
      cred = peerCred(fd);
    } catch (err) {
      noisy.warn('CNI socket: cannot read the peer credentials; connection closed', {
        error: describeError(err),
      });
      sock.destroy();
      return;
    }
    if (cred.uid !== 0) {
      noisy.warn('CNI socket: connection from a non-root process refused', { ...cred });
      sock.destroy();
      return;
    }
    readRequest(sock, (req) => {
      const p = serve(sock, req, cred).finally(() => inflight.delete(p));
      inflight.add(p);
    });
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.on('error', (err) => noisy.warn('CNI socket error', { error: describeError(err) }));

  const sameNetns = (pid: number): boolean => {
    try {
      const st = statSync(`/proc/${pid}/ns/net`);
      return st.ino === ownNetns.ino && st.dev === ownNetns.dev;
    } catch {
      return false;
    }
  };

  async function serve(sock: Socket, req: CniRequest, cred: PeerCred): Promise<void> {
    let reply: Buffer;
    if (!sameNetns(cred.pid)) {
      reply = encodeReply(
        ReplyStatus.WrongNamespace,
        1,
        Buffer.alloc(0),
        Buffer.from(`weftd on ${o.path} serves another network namespace`),
      );
    } else {
      const command = req.env['CNI_COMMAND'] ?? '';
      const id = req.env['CNI_CONTAINERID'] ?? '';
      const run = (): ReturnType<typeof runInProcess> => runInProcess(req.env, req.stdin);
      try {
        const r =
          command === 'GC'
            ? await locks.exclusive(run)
            : command === 'ADD' || command === 'DEL' || command === 'CHECK'
              ? await locks.shared(id, run)
              : await run();
        reply = encodeReply(ReplyStatus.Ran, r.exitCode, Buffer.from(r.stdout), r.stderr);
      } catch (err) {
        // runInProcess never throws; if it ever does, the shim runs the full plugin instead.
        log.error('CNI call failed inside weftd', { error: describeError(err) });
        reply = encodeReply(
          ReplyStatus.Unavailable,
          1,
          Buffer.alloc(0),
          Buffer.from('weftd failed to run the call'),
        );
      }
    }
    if (!sock.destroyed) sock.end(reply);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(o.path, 0o600);
  const ino = lstatSync(o.path).ino;
  log.info('CNI socket listening', { path: o.path });

  return {
    path: o.path,
    async close(): Promise<void> {
      const closed = new Promise<void>((r) => server.close(() => r()));
      await Promise.race([
        Promise.allSettled([...inflight]),
        new Promise((r) => setTimeout(r, DRAIN_MS).unref()),
      ]);
      for (const s of sockets) s.destroy();
      await closed;
      try {
        if (lstatSync(o.path).ino === ino) unlinkSync(o.path);
      } catch {
        /* already gone */
      }
    },
  };
}

/** Collects one request (bounded, timed); on a complete one calls `onRequest`, else closes. */
function readRequest(sock: Socket, onRequest: (req: CniRequest) => void): void {
  const chunks: Buffer[] = [];
  let have = 0;
  let total: number | undefined;
  const timer = setTimeout(() => sock.destroy(), REQUEST_TIMEOUT_MS);
  const onData = (c: Buffer): void => {
    chunks.push(c);
    have += c.length;
    try {
      if (total === undefined) total = requestLength(Buffer.concat(chunks));
      if (total === undefined || have < total) return;
      if (have > total) throw new Error('more bytes than the header announced');
      clearTimeout(timer);
      sock.off('data', onData);
      sock.pause();
      onRequest(decodeRequest(Buffer.concat(chunks)));
    } catch {
      clearTimeout(timer);
      sock.destroy();
    }
  };
  sock.on('data', onData);
  sock.on('close', () => clearTimeout(timer));
}

/**
 * Takes the socket path: true when it is free or held by a stale socket (removed); false when a live
 * server answers on it (another weftd: never steal its socket). Anything that is not a socket is refused.
 */
async function claimPath(path: string): Promise<boolean> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return true;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; remove it`);
  const live = await new Promise<boolean>((resolve) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) return false;
  unlinkSync(path);
  return true;
}
