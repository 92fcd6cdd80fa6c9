/**
 * weftd's CNI socket (README.md "CNI plugin"): the `weft` plugin a runtime execs is a small C shim
 * (cni-shim/) that hands each call here. weftd runs the plugin logic in-process (src/cni/in-process.ts,
 * the same dispatcher as the standalone plugin) and sends back stdout, stderr and the exit code for the
 * shim to relay. The delegates (bridge → host-local) are run by the shim on weftd's request (cni-wire.ts
 * "WCNX"): a fork from the small shim is cheaper than from weftd, and they run in the caller's namespaces
 * and environment exactly as a runtime would run them. That removes a Node start from every CNI call.
 *
 * Hostile clients: the socket is 0600 in a root-owned directory and every connection is checked with
 * SO_PEERCRED (uid 0 only). The request must arrive whole within REQUEST_TIMEOUT_MS and within the wire
 * limits; an exec result must come within the delegate's timeout plus a margin; at most MAX_CONNECTIONS
 * at once; any error ends that connection only. Calls for one container are serialised (cni-locks.ts),
 * and against standalone plugin processes by the state lock (src/cni/lock.ts, native flock here).
 * A call's answer is sent before its state bookkeeping that the answer does not depend on (the state file
 * with the ADD result: src/cni/deps.ts afterAnswer), which then runs at once, still inside the
 * container's lock: the runtime does not wait for ext4's rename over the earlier file.
 */
import { chmodSync, lstatSync, mkdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { dirname } from 'node:path';
import { accessDenied, callerPath } from '../cni/deps.js';
import { CniCode, CniError } from '../cni/errors.js';
import { runInProcess, runLater } from '../cni/in-process.js';
import {
  DELEGATE_TIMEOUT_MS,
  delegateEnv,
  delegateOutcome,
  MAX_OUTPUT,
  type Invoker,
} from '../cni/invoke.js';
import { pollingFlock, type Flock } from '../cni/lock.js';
import { describeError } from '../errors.js';
import { loadNative } from '../native/binding.js';
import { rateLimited, type Logger } from '../log/logger.js';
import { CniLocks } from './cni-locks.js';
import { loadPeerCred, type PeerCred } from './cni-peercred.js';
import {
  decodeExecResult,
  decodeRequest,
  encodeExec,
  encodeReply,
  ExecKind,
  ReplyStatus,
  requestLength,
  type CniRequest,
  type ExecResult,
} from './cni-wire.js';

export const REQUEST_TIMEOUT_MS = 10_000;
export const MAX_CONNECTIONS = 64;
/** Beyond the delegate's own timeout (the shim kills it then), how long weftd waits for the shim. */
const EXEC_MARGIN_MS = 10_000;
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
    log.warn('CNI socket off: the peer credential check is unavailable', {
      error: peerCred.message,
    });
    return null;
  }
  try {
    mkdirSync(dirname(o.path), { recursive: true, mode: 0o755 });
    if (!(await claimPath(o.path))) {
      log.warn('CNI socket off: another process serves it', { path: o.path });
      return null;
    }
  } catch (err) {
    log.error('CNI socket off', { path: o.path, error: describeError(err) });
    return null;
  }
  const noisy = rateLimited(log, 60_000, 3);
  // CHECK looks into the container's netns (nsenter: setns needs CAP_SYS_ADMIN, which weftd.service's
  // CapabilityBoundingSet leaves out); without it the shim runs the full plugin, with the runtime's
  // privileges, instead of weftd answering every CHECK with "cannot inspect"
  const canEnterNetns = hasEffectiveCap(CAP_SYS_ADMIN);
  const locks = new CniLocks();
  const flock = nativeFlock(log);
  const sockets = new Set<Socket>();
  const inflight = new Set<Promise<void>>();

  const server: Server = createServer((sock) => {
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
    const conn = new ShimConnection(
      sock,
      (req) => {
        const p = serve(conn, req, cred.pid).finally(() => inflight.delete(p));
        inflight.add(p);
      },
      (req) =>
        log.warn(
          'CNI: dropped a request whose shim had already given up on weftd (it ran the full plugin)',
          {
            command: req.env['CNI_COMMAND'] ?? '',
            containerID: req.env['CNI_CONTAINERID'] ?? '',
          },
        ),
    );
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.on('error', (err) => noisy.warn('CNI socket error', { error: describeError(err) }));

  async function serve(conn: ShimConnection, req: CniRequest, callerPid: number): Promise<void> {
    const command = req.env['CNI_COMMAND'] ?? '';
    const id = req.env['CNI_CONTAINERID'] ?? '';
    // The answer goes out first, then the call's state bookkeeping (CniDeps.afterAnswer), both while
    // the container's lock is held: the next call for this container sees the finished state.
    const run = async (): Promise<void> => {
      // the shim's pid: CNI_NETNS is looked at in the runtime's mount namespace (CniDeps.callerPid)
      const r = await runInProcess(req.env, req.stdin, conn.invoker(req.env), callerPid, flock);
      conn.finish(encodeReply(ReplyStatus.Ran, r.exitCode, Buffer.from(r.stdout), r.stderr));
      runLater(r.later, (what, err) =>
        log.warn(`CNI: ${what} after the answer failed; DEL and GC still release it`, {
          command,
          containerID: id,
          error: describeError(err),
        }),
      );
    };
    // the shim then runs the full plugin with the runtime's privileges (cni-shim/weft-cni-shim.c)
    const handOff = (why: string): void =>
      conn.finish(encodeReply(ReplyStatus.Unavailable, 1, Buffer.alloc(0), Buffer.from(why)));
    if (command === 'CHECK' && !canEnterNetns)
      return handOff("weftd cannot enter the container's network namespace (no CAP_SYS_ADMIN)");
    // DEL must know whether CNI_NETNS is the host's own netns (src/cni/host-netns.ts: the delegate
    // would delete the host's interface named CNI_IFNAME). weftd under its unit may not look at
    // /proc/<pid>/ns/net of a process with more capabilities than its own (EACCES).
    const netns = command === 'DEL' ? callerPath(callerPid, req.env['CNI_NETNS'] ?? '') : '';
    if (netns !== '' && accessDenied(() => statSync(netns)))
      return handOff(
        "weftd may not look at CNI_NETNS (the runtime's process has more capabilities)",
      );
    try {
      if (command === 'GC') await locks.exclusive(run);
      else if (command === 'ADD' || command === 'DEL' || command === 'CHECK')
        await locks.shared(id, run);
      else await run();
    } catch (err) {
      // runInProcess never throws; if it ever does, the shim runs the full plugin instead.
      log.error('CNI call failed inside weftd', { error: describeError(err) });
      handOff('weftd failed to run the call');
    }
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

const CAP_SYS_ADMIN = 21;

/** Whether this process has capability `bit` in its effective set (/proc/self/status CapEff). */
function hasEffectiveCap(bit: number): boolean {
  try {
    const text = readFileSync('/proc/self/status', 'utf8');
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(text)?.[1];
    return hex !== undefined && ((BigInt(`0x${hex}`) >> BigInt(bit)) & 1n) === 1n;
  } catch {
    return false;
  }
}

interface Pending {
  resolve(r: ExecResult): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * One shim's connection: first its request (bounded, within REQUEST_TIMEOUT_MS), then the exec results
 * for the delegates weftd asks it to run, one at a time; then the final reply. Anything malformed or
 * late closes the connection (the call in progress then fails; the shim falls back).
 */
class ShimConnection {
  private buf: Buffer = Buffer.alloc(0);
  private requested = false;
  private pending: Pending | undefined;
  private finished = false;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly requestTimer: NodeJS.Timeout;

  constructor(
    private readonly sock: Socket,
    private readonly onRequest: (req: CniRequest) => void,
    private readonly onStale: (req: CniRequest) => void,
  ) {
    this.requestTimer = setTimeout(() => sock.destroy(), REQUEST_TIMEOUT_MS);
    sock.on('data', (c: Buffer) => this.onData(c));
    sock.on('close', () => {
      clearTimeout(this.requestTimer);
      if (this.pending)
        this.fail(new CniError(CniCode.IoFailure, 'the CNI shim closed its connection'));
    });
  }

  private onData(c: Buffer): void {
    this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
    try {
      if (!this.requested) {
        const total = requestLength(this.buf);
        if (total === undefined || this.buf.length < total) return;
        if (this.buf.length > total) throw new Error('data after the request');
        clearTimeout(this.requestTimer);
        this.requested = true;
        const req = decodeRequest(this.buf);
        this.buf = Buffer.alloc(0);
        // A shim never ends its side before the answer: a request that arrives with its end (weftd was
        // stopped, the shim gave up and ran the full plugin: cni-shim/weft-cni-shim.c read_full) is
        // stale, and running it now could undo what the full plugin did. The end, when the request
        // came with it, is read in the same turn, so it shows by setImmediate.
        setImmediate(() => {
          if (this.sock.readableEnded || this.sock.destroyed) this.onStale(req);
          else this.onRequest(req);
        });
        return;
      }
      if (!this.pending) throw new Error('unexpected data');
      const r = decodeExecResult(this.buf, MAX_OUTPUT);
      if (r === undefined) return;
      if (this.buf.length > r.bytes) throw new Error('data after an exec result');
      this.buf = Buffer.alloc(0);
      const p = this.pending;
      this.pending = undefined;
      clearTimeout(p.timer);
      p.resolve(r.result);
    } catch {
      this.sock.destroy();
    }
  }

  private fail(err: Error): void {
    const p = this.pending;
    this.pending = undefined;
    if (p) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }

  /** The Invoker for this call: each delegate runs in the shim, with `base` (the runtime's env). */
  invoker(base: Readonly<Record<string, string>>): Invoker {
    return (req) => {
      const run = async (): Promise<string> => {
        const timeoutMs = req.timeoutMs ?? DELEGATE_TIMEOUT_MS;
        const r = await this.exec(
          encodeExec(req.plugin, delegateEnv(base, req), Buffer.from(req.stdin), timeoutMs),
          timeoutMs + EXEC_MARGIN_MS,
        );
        if (r.kind === ExecKind.ExecFailed) {
          const name = constName(osConstants.errno, r.value) ?? `errno ${r.value}`;
          throw new CniError(
            CniCode.IoFailure,
            `cannot run ${req.plugin}: spawn ${req.plugin} ${name}`,
          );
        }
        const signal =
          r.kind === ExecKind.Signaled
            ? ((constName(osConstants.signals, r.value) ?? `SIG${r.value}`) as NodeJS.Signals)
            : null;
        const code = r.kind === ExecKind.Exited ? r.value : null;
        return delegateOutcome(req, r.stdout, code, signal, r.overflow);
      };
      const p = this.chain.then(run, run);
      this.chain = p.catch(() => undefined);
      return p;
    };
  }

  private exec(frame: Buffer, timeoutMs: number): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      if (this.sock.destroyed) {
        reject(new CniError(CniCode.IoFailure, 'the CNI shim closed its connection'));
        return;
      }
      const timer = setTimeout(() => {
        this.fail(new CniError(CniCode.IoFailure, 'the CNI shim did not report the delegate'));
        this.sock.destroy();
      }, timeoutMs);
      this.pending = { resolve, reject, timer };
      this.sock.write(frame);
    });
  }

  /** Sends the final reply (once; later calls are ignored) and ends the connection. */
  finish(reply: Buffer): void {
    if (this.finished) return;
    this.finished = true;
    if (!this.sock.destroyed) this.sock.end(reply);
  }
}

/** The name of errno or signal number `n` (os.constants). */
const constName = (table: object, n: number): string | undefined =>
  Object.entries(table).find(([, v]) => v === n)?.[0];

/**
 * The state lock shared with standalone plugin processes (src/cni/lock.ts), taken with the native addon's
 * non-blocking flock(2) and polled, so weftd never blocks or forks for it. Without the addon: undefined,
 * and the plugin's own (util-linux `flock`, one short child per lock) is used.
 */
function nativeFlock(log: Logger): Flock | undefined {
  try {
    const native = loadNative();
    if (typeof native.tryFlock !== 'function')
      throw new Error('the addon has no tryFlock: rebuild it');
    return pollingFlock((fd, exclusive) => native.tryFlock(fd, exclusive));
  } catch (err) {
    log.warn('CNI state lock through util-linux flock: the native addon is unavailable', {
      error: describeError(err),
    });
    return undefined;
  }
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
