/**
 * Per-attachment state under dataDir (docs/cni-contract.md A12, docs/pitfalls.md C1/C2):
 *   <dataDir>/<network>/<containerID>@<ifname>   (dirs 0700, files 0600)
 * holding the delegate config weft ran and, once ADD succeeded, the delegate's result. Keyed by
 * (network, container, ifname) so two attachments of one container never collide; `@` cannot occur in a
 * container id, so a file name maps back to exactly one (id, ifname) for GC.
 *
 * Writes are temp file + rename (atomic: readers see the old file or the new one), then fsync of the file
 * and the directory, which `write` returns as a promise (ADD does not wait for it, see add.ts). A power
 * loss can leave an empty or missing state file, never a wrong one: DEL then rebuilds the delegate config
 * from subnet.env (unreadable or lost state, docs/pitfalls.md C1/C2) and the delegate's DEL still releases the
 * address. Removal is not fsynced: a state file that comes back after a crash is released by the next
 * DEL, GC or ADD of that attachment. Every path component is validated (env.ts) before it gets here, and `pathFor`
 * re-checks that the result stays inside dataDir; files are opened with O_NOFOLLOW.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readAtMostSync, withRegularFileSync } from '../files/read-regular.js';
import { CniCode, CniError } from './errors.js';
import { ID_PATTERN, validateContainerId, validateIfname } from './env.js';
import { isObject, type JsonObject } from './netconf.js';

/** A state file holds one delegate config and its result: a few KiB. More is not one weft wrote. */
const MAX_STATE_BYTES = 1 << 20;

export const STATE_FORMAT = 1;

export interface StoredAttachment {
  readonly format: typeof STATE_FORMAT;
  readonly network: string;
  readonly containerID: string;
  readonly ifname: string;
  /** The exact delegate config ADD ran (DEL/CHECK/GC replay it). */
  readonly delegate: JsonObject;
  /** The delegate's ADD result, once ADD succeeded. */
  readonly result?: JsonObject;
}

export type ReadState =
  | { kind: 'missing' }
  | { kind: 'corrupt'; reason: string }
  | { kind: 'ok'; state: StoredAttachment };

const ioError = (what: string, err: unknown): CniError =>
  new CniError(CniCode.IoFailure, `${what}: ${err instanceof Error ? err.message : String(err)}`);

export class StateStore {
  constructor(private readonly dataDir: string) {}

  networkDir(network: string): string {
    if (!ID_PATTERN.test(network))
      throw new CniError(
        CniCode.InvalidNetworkConfig,
        `invalid network name ${JSON.stringify(network)}`,
      );
    return this.inside(path.join(this.dataDir, network));
  }

  pathFor(network: string, containerID: string, ifname: string): string {
    validateContainerId(containerID);
    validateIfname(ifname);
    return this.inside(path.join(this.networkDir(network), `${containerID}@${ifname}`));
  }

  private inside(p: string): string {
    const root = path.resolve(this.dataDir);
    const abs = path.resolve(p);
    if (!abs.startsWith(root + path.sep)) {
      throw new CniError(
        CniCode.InvalidEnv,
        `state path ${JSON.stringify(p)} escapes dataDir ${root}`,
      );
    }
    return abs;
  }

  /**
   * dataDir itself may be a symlink the operator chose (e.g. into /run, docs/pitfalls.md C1); the per-network
   * directory below it is weft's own and must be a real directory. Fast path (every write after the first):
   * one lstat finds the network directory already there as a real directory, which also proves dataDir.
   */
  private ensureDir(dir: string): void {
    try {
      if (fs.lstatSync(dir, { throwIfNoEntry: false })?.isDirectory()) return;
    } catch {
      /* absent (or unreadable): create and check it below */
    }
    for (const d of [this.dataDir, dir]) {
      try {
        fs.mkdirSync(d, { recursive: true, mode: 0o700 });
        const st = d === dir ? fs.lstatSync(d) : fs.statSync(d);
        if (!st.isDirectory()) throw new Error(`${d} is not a directory`);
      } catch (err) {
        throw ioError(`cannot create state directory ${d}`, err);
      }
    }
  }

  /**
   * Atomically replaces the state (temp + rename) before returning; the promise resolves once file and
   * directory are fsynced (it rejects with code 5 if that fails). Throws code 5 when the write fails.
   * `sync: false` skips the fsync (the promise resolves at once): for a state that is replaced within
   * milliseconds by one that is synced (ADD's state before the delegate runs, see add.ts).
   */
  write(s: StoredAttachment, o: { sync?: boolean } = {}): Promise<void> {
    const file = this.pathFor(s.network, s.containerID, s.ifname);
    const dir = path.dirname(file);
    this.ensureDir(dir);
    const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
    const data = Buffer.from(JSON.stringify(s) + '\n');
    try {
      const fd = fs.openSync(
        tmp,
        fs.constants.O_WRONLY |
          fs.constants.O_CREAT |
          fs.constants.O_TRUNC |
          fs.constants.O_NOFOLLOW,
        0o600,
      );
      try {
        fs.writeFileSync(fd, data);
        fs.renameSync(tmp, file);
      } catch (err) {
        fs.closeSync(fd);
        throw err;
      }
      if (o.sync === false) {
        fs.closeSync(fd);
        return Promise.resolve();
      }
      const durable = syncAndClose(fd, dir).catch((err: unknown) => {
        throw ioError(`cannot sync state ${file}`, err);
      });
      durable.catch(() => {
        /* the caller awaits it; never an unhandled rejection while it is busy elsewhere */
      });
      return durable;
    } catch (err) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        /* not created */
      }
      throw ioError(`cannot write state ${file}`, err);
    }
  }

  read(network: string, containerID: string, ifname: string): ReadState {
    const file = this.pathFor(network, containerID, ifname);
    let text: string;
    // The usual ADD case, answered without the Error (and stack) Node builds for a failed open; a
    // symlink is still found here and refused by O_NOFOLLOW below.
    if (fs.lstatSync(file, { throwIfNoEntry: false }) === undefined) return { kind: 'missing' };
    try {
      // non-blocking (a FIFO planted here cannot hold the call), regular files only, not a link's target
      const buf = withRegularFileSync(
        file,
        (fd, st) => readAtMostSync(fd, Math.min(st.size, MAX_STATE_BYTES) + 1),
        true,
      );
      if (buf.length > MAX_STATE_BYTES)
        return { kind: 'corrupt', reason: `${file} is larger than ${MAX_STATE_BYTES} bytes` };
      text = buf.toString('utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
      return { kind: 'corrupt', reason: `cannot read ${file}: ${(err as Error).message}` };
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return {
        kind: 'corrupt',
        reason: `${file} is not JSON (${text.length} bytes): ${(err as Error).message}`,
      };
    }
    if (
      !isObject(parsed) ||
      parsed['format'] !== STATE_FORMAT ||
      parsed['network'] !== network ||
      parsed['containerID'] !== containerID ||
      parsed['ifname'] !== ifname ||
      !isObject(parsed['delegate']) ||
      (parsed['result'] !== undefined && !isObject(parsed['result']))
    ) {
      return { kind: 'corrupt', reason: `${file} is not a weft state file for this attachment` };
    }
    return { kind: 'ok', state: parsed as unknown as StoredAttachment };
  }

  /**
   * Removes the state; absent is fine. With `later`, the name is gone when this returns, but the file's
   * last close, where ext4 frees it (~0.35 ms, more under journal contention, most of an unlink), is
   * handed to `later` (weftd: after its answer): the file is held open across the unlink.
   */
  remove(
    network: string,
    containerID: string,
    ifname: string,
    later?: (close: () => void) => void,
  ): void {
    const file = this.pathFor(network, containerID, ifname);
    let fd: number | undefined;
    if (later) {
      try {
        // O_NONBLOCK: nothing planted here (a FIFO) can hold the call; O_NOFOLLOW: never a link's target.
        fd = fs.openSync(
          file,
          fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK,
        );
      } catch {
        /* absent, or not openable: the unlink below decides */
      }
    }
    try {
      fs.unlinkSync(file);
    } catch (err) {
      if (fd !== undefined) fs.closeSync(fd);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw ioError(`cannot remove state ${file}`, err);
      return;
    }
    if (fd !== undefined) later?.(() => fs.closeSync(fd));
  }

  /**
   * Every attachment with state for `network`. Names that are no attachment's are skipped, and so is an
   * entry named like one that is no regular file (a directory, FIFO, socket or symlink weft never
   * writes): `onOther` hears of it (GC logs it; releasing it would fail every GC).
   */
  list(
    network: string,
    onOther?: (name: string, kind: string) => void,
  ): { containerID: string; ifname: string }[] {
    const out: { containerID: string; ifname: string }[] = [];
    for (const e of this.entries(network)) {
      const n = e.name;
      const at = n.indexOf('@');
      if (n.startsWith('.') || at < 0) continue;
      const containerID = n.slice(0, at);
      const ifname = n.slice(at + 1);
      try {
        validateContainerId(containerID);
        validateIfname(ifname);
      } catch {
        continue; // not ours
      }
      if (!e.isFile()) onOther?.(n, entryKind(e));
      else out.push({ containerID, ifname });
    }
    return out;
  }

  private entries(network: string): fs.Dirent[] {
    try {
      return fs.readdirSync(this.networkDir(network), { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw ioError(`cannot list state of network ${network}`, err);
    }
  }

  /**
   * Removes the temp files (`.<containerID>@<ifname>.<pid>.tmp`, see `write`) a writer left when it
   * died between creating and renaming one: those whose writer process is gone and that are older than
   * STALE_TEMP_MS, and any older than ORPHAN_TEMP_MS (a pid seen from another pid namespace may belong
   * to someone else). Only GC calls it, holding the network's exclusive lock (lock.ts): no writer of
   * this network is running then, the ages only guard against one that ignores the lock. Returns the
   * names removed; failures go to `onError`.
   */
  removeStaleTemps(
    network: string,
    now: number,
    onError: (name: string, err: unknown) => void,
  ): string[] {
    const removed: string[] = [];
    for (const e of this.entries(network)) {
      const m = TEMP_NAME.exec(e.name);
      if (!m || !e.isFile()) continue;
      const file = path.join(this.networkDir(network), e.name);
      try {
        const age = now - fs.lstatSync(file).mtimeMs;
        const stale = age > ORPHAN_TEMP_MS || (age > STALE_TEMP_MS && !processAlive(Number(m[1])));
        if (!stale) continue;
        fs.unlinkSync(file);
        removed.push(e.name);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onError(e.name, err);
      }
    }
    return removed;
  }

  /**
   * Opens (creating, 0600) the lock file `name` of `network` (lock.ts) and returns its descriptor. Never
   * follows a symlink; anything but a regular file there is refused (code 5).
   */
  openLockFile(network: string, name: string): number {
    const file = this.inside(path.join(this.networkDir(network), name));
    this.ensureDir(path.dirname(file));
    let fd: number;
    try {
      fd = fs.openSync(
        file,
        fs.constants.O_RDWR |
          fs.constants.O_CREAT |
          fs.constants.O_NOFOLLOW |
          fs.constants.O_NONBLOCK,
        0o600,
      );
    } catch (err) {
      throw ioError(`cannot open lock file ${file}`, err);
    }
    if (!fs.fstatSync(fd).isFile()) {
      fs.closeSync(fd);
      throw ioError(`cannot use lock file ${file}`, new Error('not a regular file'));
    }
    return fd;
  }
}

/** `write`'s temp files: `.<containerID>@<ifname>.<pid>.tmp`. */
const TEMP_NAME = /^\.[^@]+@[^@]+\.([1-9][0-9]{0,9})\.tmp$/;
/** A temp file whose writer is gone is removed once it is this old. */
export const STALE_TEMP_MS = 5_000;
/** A temp file this old is removed whatever its pid says (a write takes milliseconds). */
export const ORPHAN_TEMP_MS = 10 * 60_000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function entryKind(e: fs.Dirent): string {
  if (e.isDirectory()) return 'directory';
  if (e.isSymbolicLink()) return 'symlink';
  if (e.isFIFO()) return 'FIFO';
  if (e.isSocket()) return 'socket';
  return 'special file';
}

/**
 * fsync of the written file (its fd), then of its directory (the rename), off the main thread. Plain
 * callbacks, not fs.promises: this runs beside every ADD's delegate, and FileHandle's promise machinery
 * cost more main-thread time than the two syscalls (bench/cni.ts).
 */
function syncAndClose(fd: number, dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.fsync(fd, (fileErr) => {
      fs.closeSync(fd);
      if (fileErr) return reject(fileErr);
      fs.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY, (openErr, d) => {
        if (openErr) return reject(openErr);
        fs.fsync(d, (dirErr) => {
          fs.closeSync(d);
          if (dirErr) reject(dirErr);
          else resolve();
        });
      });
    });
  });
}
