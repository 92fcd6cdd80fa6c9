/**
 * This host's WireGuard private key: generated once, kept in `<state dir>/wireguard.key` (base64, as
 * `wg genkey` writes it) with mode 0600, and reused on every start so the public key in the lease is
 * stable across restarts. The key is never logged: errors name the file, never its content.
 *
 * Hostile file handling: a file that is not a base64 32-byte key is an error naming the file and the
 * fix (weftd does not silently replace a key peers may know); so is a FIFO, device or directory at the
 * path (opened non-blocking: never a hang); so is a symbolic link (opened O_NOFOLLOW: a link planted
 * at the path can neither make weftd use another file as its key nor make it chmod that file); a file
 * readable by group or others is tightened to 0600 (and reported through `warn`); a file owned by
 * another user (who can read it whatever its mode) is an error.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { WeftError, isAccessDenied } from '../errors.js';
import { NotRegularFileError, readAtMostSync, withRegularFileSync } from '../files/read-regular.js';
import { BASE64_KEY } from './config.js';

export const KEY_FILE = 'wireguard.key';

/**
 * The fix for a permission error: weftd runs as root, but the packaged unit (packaging/weftd.service)
 * keeps only network capabilities, so root's files and directories are subject to their modes like
 * anyone's (no CAP_DAC_OVERRIDE).
 */
function accessFix(err: unknown, stateDir: string): string {
  if (!isAccessDenied(err)) return '';
  const key = join(stateDir, KEY_FILE);
  return (
    `: weftd (root without CAP_DAC_OVERRIDE under weftd.service) must own ${stateDir} and the key ` +
    `file in it: chown root ${stateDir} ${key}; chmod u+rwx ${stateDir}; chmod 0600 ${key}`
  );
}
/**
 * Access refused, or something other than a file at the path, needs the operator (E_STATE_FILE: weftd
 * exits 9 and is not restarted); other I/O errors may pass (E_IO).
 */
function accessCode(err: unknown): 'E_STATE_FILE' | 'E_IO' {
  return err instanceof NotRegularFileError || isAccessDenied(err) ? 'E_STATE_FILE' : 'E_IO';
}
/** What is read of the key file at most: a key with a newline is 45 bytes. */
const KEY_FILE_MAX_BYTES = 4096;

export interface LoadedKey {
  readonly privateKey: Buffer;
  readonly path: string;
  /** true when this call generated and stored it */
  readonly created: boolean;
}

/**
 * Temp files of a key write that crashed before its rename (`<key>.<pid>.<hex>.tmp`, below): each holds
 * a private key nobody uses, so none stays on disk. Only one weftd runs per host
 * (src/daemon/instance-lock.ts, taken before any backend starts), so every such file is stale here.
 */
function removeStaleTemps(stateDir: string): void {
  let names: string[];
  try {
    names = readdirSync(stateDir);
  } catch {
    return; // no state dir yet (created below) or unreadable (the read below names the problem)
  }
  for (const n of names) {
    if (!TEMP_NAME.test(n)) continue;
    try {
      rmSync(join(stateDir, n), { force: true }); // a link itself, never its target
    } catch {
      /* a directory of that name: not ours to remove */
    }
  }
}
const TEMP_NAME = /^wireguard\.key\.\d+\.[0-9a-f]{8}\.tmp$/;

/**
 * Reads the key from `stateDir`, or creates it with `generate` (a 32-byte clamped X25519 key). Throws
 * WeftError E_STATE_FILE for what only the operator can fix (the file is a link, another user's, not a
 * file, holds no valid key, or access is refused) and E_IO for other read/write failures.
 */
export function loadOrCreateKey(
  stateDir: string,
  generate: () => Buffer,
  warn: (msg: string, fields: Record<string, unknown>) => void = () => {},
): LoadedKey {
  const path = join(stateDir, KEY_FILE);
  removeStaleTemps(stateDir);
  let text: string | null = null;
  try {
    // Non-blocking, so a FIFO planted at the path cannot hang weftd's start; only a regular file, and
    // at most KEY_FILE_MAX_BYTES of it (a key is 44 characters).
    text = withRegularFileSync(
      path,
      (fd, st) => {
        const uid = process.geteuid?.() ?? st.uid;
        if (st.uid !== uid) {
          // its owner can read the key whatever the mode, and weftd (without CAP_FOWNER under the
          // packaged unit) could not tighten the mode of another user's file anyway
          throw new WeftError(
            'E_STATE_FILE',
            `${path} is owned by uid ${st.uid}, not by weftd's user (uid ${uid}): that user can read ` +
              `or replace this host's private key; \`chown ${uid} ${path}\` if it is the right key, ` +
              'or delete it to make weftd generate a new key',
            { details: { path, uid: st.uid } },
          );
        }
        if ((st.mode & 0o077) !== 0) {
          fchmodSync(fd, 0o600);
          warn(
            'wireguard key file was open to group or others (mode ' +
              `0${(st.mode & 0o777).toString(8)}); mode set to 0600. Whoever read it holds this ` +
              "host's private key: to rotate it, delete the file and restart weftd (peers pick the " +
              'new public key up from the lease)',
            { path },
          );
        }
        return readAtMostSync(fd, Math.min(st.size, KEY_FILE_MAX_BYTES)).toString('utf8').trim();
      },
      true, // O_NOFOLLOW: a link planted at the path is refused (ELOOP below)
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new WeftError(
        'E_STATE_FILE',
        `${path} is a symbolic link: weftd does not follow it for its private key (it could point ` +
          'at another file); put the key file itself there (mode 0600), or delete the link to make ' +
          'weftd generate a new key',
        { details: { path } },
      );
    }
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (err instanceof WeftError) throw err;
      throw new WeftError(
        accessCode(err),
        `cannot read the WireGuard key ${path}: ${(err as Error).message}${accessFix(err, stateDir)}`,
        {
          cause: err,
        },
      );
    }
  }
  if (text !== null) {
    if (!BASE64_KEY.test(text)) {
      throw new WeftError(
        'E_STATE_FILE',
        `${path} does not hold a base64 WireGuard private key (44 characters): restore it, or ` +
          'delete it to make weftd generate a new key (peers pick the new public key up from the lease)',
        { details: { path } },
      );
    }
    return { privateKey: Buffer.from(text, 'base64'), path, created: false };
  }
  const key = generate();
  if (key.length !== 32) throw new WeftError('E_IO', 'generated WireGuard key is not 32 bytes');
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    // Durable before the lease publishes the public key: without the fsyncs a crash soon after the
    // first start can leave an empty key file (ext4 allocates a new file's blocks late), which weftd
    // then refuses until the operator deletes it.
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, key.toString('base64') + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    const dir = openSync(stateDir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch (err) {
    rmSync(tmp, { force: true }); // no temp file left behind (the key never stays in two files)
    throw new WeftError(
      accessCode(err),
      `cannot store the WireGuard key in ${stateDir}: ${(err as Error).message}${accessFix(err, stateDir)}`,
      {
        cause: err,
      },
    );
  }
  return { privateKey: key, path, created: true };
}
