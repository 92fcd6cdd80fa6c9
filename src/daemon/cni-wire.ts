/**
 * The framing between the CNI shim (cni-shim/weft-cni-shim.c) and weftd's CNI server (cni-server.ts).
 * Little endian:
 *   request:  "WCNI" u32 version(1) u32 envLen u32 stdinLen | env ("K=V" entries, each ended by NUL) | stdin
 *   reply:    "WCNR" u32 status u32 exitCode u32 stdoutLen u32 stderrLen | stdout | stderr
 * Pure: a hostile peer's bytes are checked here (magic, version, bounded lengths) before anything else
 * sees them.
 */
import { MAX_STDIN_BYTES } from '../cni/netconf.js';

export const REQUEST_MAGIC = 'WCNI';
export const REPLY_MAGIC = 'WCNR';
export const WIRE_VERSION = 1;
export const REQUEST_HEADER_BYTES = 16;
/** The shim refuses to send more (it runs the full plugin instead). */
export const MAX_ENV_BYTES = 1 << 20;
/** One byte over the plugin's stdin limit: the plugin logic answers that with code 5, as standalone. */
export const MAX_WIRE_STDIN_BYTES = MAX_STDIN_BYTES + 1;

/** Reply status: 0 = the plugin ran (relay it); otherwise the shim falls back to the full plugin. */
export const ReplyStatus = { Ran: 0, Unavailable: 2 } as const;

export interface CniRequest {
  readonly env: Record<string, string>;
  readonly stdin: Buffer;
}

export class WireError extends Error {
  override readonly name = 'WireError';
}

/**
 * Total request size once the header is known (undefined while fewer than 16 bytes are there); throws a
 * WireError for a wrong magic/version or a length over the limits.
 */
export function requestLength(head: Buffer): number | undefined {
  if (head.length < REQUEST_HEADER_BYTES) return undefined;
  if (head.toString('latin1', 0, 4) !== REQUEST_MAGIC) throw new WireError('bad magic');
  const version = head.readUInt32LE(4);
  if (version !== WIRE_VERSION) throw new WireError(`unsupported wire version ${version}`);
  const envLen = head.readUInt32LE(8);
  const stdinLen = head.readUInt32LE(12);
  if (envLen > MAX_ENV_BYTES) throw new WireError(`environment of ${envLen} bytes is too large`);
  if (stdinLen > MAX_WIRE_STDIN_BYTES)
    throw new WireError(`stdin of ${stdinLen} bytes is too large`);
  return REQUEST_HEADER_BYTES + envLen + stdinLen;
}

/** Decodes a complete request (exactly requestLength bytes). */
export function decodeRequest(buf: Buffer): CniRequest {
  const total = requestLength(buf);
  if (total === undefined || buf.length !== total) throw new WireError('truncated request');
  const envLen = buf.readUInt32LE(8);
  const envBytes = buf.subarray(REQUEST_HEADER_BYTES, REQUEST_HEADER_BYTES + envLen);
  const env: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const entry of envBytes.toString('utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const k = entry.slice(0, eq);
    // getenv(3) in the shim and execve(2) for the delegates see the first of duplicate names.
    if (!(k in env)) env[k] = entry.slice(eq + 1);
  }
  return { env, stdin: Buffer.from(buf.subarray(REQUEST_HEADER_BYTES + envLen)) };
}

/** A frame: the 4-byte magic, `words` as little-endian u32, then `bodies`. */
function frame(magic: string, words: readonly number[], ...bodies: Buffer[]): Buffer {
  const head = Buffer.alloc(4 + 4 * words.length);
  head.write(magic, 0, 'latin1');
  words.forEach((w, i) => head.writeUInt32LE(w, 4 + 4 * i));
  return Buffer.concat([head, ...bodies]);
}

export function encodeReply(
  status: number,
  exitCode: number,
  stdout: Buffer,
  stderr: Buffer,
): Buffer {
  return frame(REPLY_MAGIC, [status, exitCode >>> 0, stdout.length, stderr.length], stdout, stderr);
}

/** Encodes a request (the shim's side; for tests and the bench's hostile clients). */
export function encodeRequest(env: Readonly<Record<string, string>>, stdin: Buffer): Buffer {
  const envBytes = envBlock(Object.entries(env));
  return frame(REQUEST_MAGIC, [WIRE_VERSION, envBytes.length, stdin.length], envBytes, stdin);
}

/** `K=V` entries, each ended by NUL. */
const envBlock = (entries: [string, string][]): Buffer =>
  Buffer.from(entries.map(([k, v]) => `${k}=${v}\0`).join(''));

export const EXEC_MAGIC = 'WCNX';
export const EXEC_RESULT_MAGIC = 'WCNE';
export const EXEC_RESULT_HEADER_BYTES = 20;
/** Kinds of an exec result. */
export const ExecKind = { Exited: 0, Signaled: 1, ExecFailed: 2 } as const;

export interface ExecResult {
  readonly kind: number;
  /** Exit code, signal number or errno, by kind. */
  readonly value: number;
  readonly stdout: Buffer;
  readonly overflow: boolean;
}

/** Asks the shim to run one delegate: `path` with exactly `env` and `stdin`, killed after `timeoutMs`. */
export function encodeExec(
  path: string,
  env: Readonly<Record<string, string>>,
  stdin: Buffer,
  timeoutMs: number,
): Buffer {
  const p = Buffer.from(path);
  const e = envBlock(
    Object.entries(env).filter(
      ([k, v]) => k !== '' && !k.includes('=') && !k.includes('\0') && !v.includes('\0'),
    ),
  );
  const timeout = Math.max(1, Math.min(0xffffffff, Math.round(timeoutMs)));
  return frame(EXEC_MAGIC, [timeout, p.length, e.length, stdin.length], p, e, stdin);
}

/**
 * One exec result from the front of `buf`: undefined while incomplete, else the result and its length.
 * Throws a WireError for anything else (the connection is then closed).
 */
export function decodeExecResult(
  buf: Buffer,
  maxStdout: number,
): { result: ExecResult; bytes: number } | undefined {
  if (buf.length < 4) return undefined;
  if (buf.toString('latin1', 0, 4) !== EXEC_RESULT_MAGIC) throw new WireError('bad magic');
  if (buf.length < EXEC_RESULT_HEADER_BYTES) return undefined;
  const len = buf.readUInt32LE(12);
  if (len > maxStdout) throw new WireError(`delegate output of ${len} bytes is too large`);
  const bytes = EXEC_RESULT_HEADER_BYTES + len;
  if (buf.length < bytes) return undefined;
  return {
    result: {
      kind: buf.readUInt32LE(4),
      value: buf.readUInt32LE(8),
      stdout: Buffer.from(buf.subarray(EXEC_RESULT_HEADER_BYTES, bytes)),
      overflow: (buf.readUInt32LE(16) & 1) !== 0,
    },
    bytes,
  };
}
