/**
 * The network configuration weft receives on stdin (docs/cni-contract.md A5, docs/flannel-compat.md §16). Parsing is
 * strict where a value reaches a path, a process or the delegate (names, paths, delegate keys) and lenient
 * elsewhere: unknown keys and `capabilities` are accepted and ignored, as the spec asks.
 */
import { DEFAULT_SUBNET_FILE } from '../lease/subnet-env.js';
import { CniCode, CniError } from './errors.js';
import { ID_PATTERN, MAX_ID_LENGTH } from './env.js';

export const DEFAULT_DATA_DIR = '/var/lib/cni/weft';
export const DEFAULT_SUBNET_WAIT_SECONDS = 10;
export const DEFAULT_DAEMON_SOCKET = '/run/weft/cni.sock';
/** sockaddr_un.sun_path holds 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH = 107;
export const MAX_STDIN_BYTES = 4 * 1024 * 1024;
/** Deeper JSON is refused: the state store and the delegate's stdin are written with JSON.stringify,
 *  which recurses and would overflow the stack (a 999 "internal error" instead of code 6). */
export const MAX_JSON_DEPTH = 64;

/** Nesting depth of a parsed JSON value, computed without recursion (stops counting past `limit`). */
export function jsonDepth(value: unknown, limit = MAX_JSON_DEPTH): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (d > max) max = d;
    if (max > limit) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export interface Attachment {
  readonly containerID: string;
  readonly ifname: string;
}

export interface WeftNetConf {
  readonly name: string;
  readonly subnetFile: string;
  readonly dataDir: string;
  /** weftd's CNI socket the shim talks to (read by cni-shim/weft-cni-shim.c; validated here). */
  readonly daemonSocket: string;
  /** How long ADD waits for subnet.env before answering "try again later" (code 11). */
  readonly subnetWaitSeconds: number;
  /** User overrides for the delegate (`type` defaults to bridge; `name`, `ipam` are forbidden). */
  readonly delegate: JsonObject | undefined;
  /** Base IPAM config; weft sets `ranges` and appends cluster routes. */
  readonly ipam: JsonObject | undefined;
  readonly runtimeConfig: JsonObject | undefined;
  readonly args: JsonObject | undefined;
  readonly prevResult: JsonObject | undefined;
  /** GC only: attachments the runtime still holds (`cni.dev/valid-attachments`). */
  readonly validAttachments: readonly Attachment[] | undefined;
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const invalid = (msg: string, details?: string): CniError =>
  new CniError(CniCode.InvalidNetworkConfig, msg, details);
const undecodable = (msg: string, details?: string): CniError =>
  new CniError(CniCode.DecodeFailure, msg, details);

/** Parses stdin as a JSON object (code 6 on failure). */
export function decodeStdin(stdin: Buffer): JsonObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdin.toString('utf8'));
  } catch (err) {
    throw undecodable(
      'failed to decode network configuration from stdin',
      err instanceof Error ? err.message : String(err),
    );
  }
  if (!isObject(parsed)) throw undecodable('network configuration on stdin is not a JSON object');
  if (jsonDepth(parsed) > MAX_JSON_DEPTH)
    throw undecodable(
      `network configuration on stdin is nested deeper than ${MAX_JSON_DEPTH} levels`,
    );
  return parsed;
}

/** `cniVersion` as sent, "0.1.0" when absent; code 6 when it is not a string. */
export function configVersion(conf: JsonObject): string {
  const v = conf['cniVersion'];
  if (v === undefined) return '0.1.0';
  if (typeof v !== 'string') throw undecodable('"cniVersion" is not a string');
  return v;
}

function optionalObject(conf: JsonObject, key: string): JsonObject | undefined {
  const v = conf[key];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw invalid(`"${key}" must be a JSON object`);
  return v;
}

function absolutePath(conf: JsonObject, key: string, dflt: string): string {
  const v = conf[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || !v.startsWith('/') || v.includes('\0') || v.length > 1024) {
    throw invalid(`"${key}" must be an absolute path`, `got ${JSON.stringify(v)}`);
  }
  if (v.split('/').includes('..')) throw invalid(`"${key}" must not contain ".."`);
  return v.length > 1 && v.endsWith('/') ? v.replace(/\/+$/, '') : v;
}

/** `daemonSocket`: an absolute path short enough for a unix socket address, without JSON escapes. */
function socketPath(conf: JsonObject): string {
  const v = absolutePath(conf, 'daemonSocket', DEFAULT_DAEMON_SOCKET);
  if (
    Buffer.byteLength(v) > MAX_SOCKET_PATH ||
    [...v].some((c) => c === '"' || c === '\\' || c < ' ')
  ) {
    throw invalid(
      `"daemonSocket" must be at most ${MAX_SOCKET_PATH} bytes without quotes, backslashes or control characters`,
      `got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function parseAttachments(v: Json | undefined): Attachment[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalid('"cni.dev/valid-attachments" must be a list');
  return v.map((a, i) => {
    if (!isObject(a) || typeof a['containerID'] !== 'string' || typeof a['ifname'] !== 'string') {
      throw invalid(`"cni.dev/valid-attachments"[${i}] needs string "containerID" and "ifname"`);
    }
    return { containerID: a['containerID'], ifname: a['ifname'] };
  });
}

/** Validates the parts weft uses (`runPlugin` in dispatch.ts has answered VERSION and checked cniVersion). */
export function parseNetConf(conf: JsonObject): WeftNetConf {
  const name = conf['name'];
  if (typeof name !== 'string' || name === '') throw invalid('missing network name', 'set "name"');
  if (name.length > MAX_ID_LENGTH || !ID_PATTERN.test(name)) {
    throw invalid(
      `invalid characters in network name ${JSON.stringify(name)}`,
      `"name" must match ${ID_PATTERN.source}`,
    );
  }
  const wait = conf['subnetWaitSeconds'];
  if (wait !== undefined && (typeof wait !== 'number' || !(wait >= 0 && wait <= 300))) {
    throw invalid('"subnetWaitSeconds" must be a number from 0 to 300');
  }
  const delegate = optionalObject(conf, 'delegate');
  if (delegate) {
    if (delegate['type'] !== undefined && typeof delegate['type'] !== 'string') {
      throw invalid('"delegate.type" must be a string');
    }
    if (delegate['name'] !== undefined)
      throw invalid('"delegate" must not set "name"', 'weft sets it to the network name');
    if (delegate['ipam'] !== undefined) {
      throw invalid('"delegate" must not set "ipam"', 'put IPAM settings in the top-level "ipam"');
    }
  }
  const ipam = optionalObject(conf, 'ipam');
  if (ipam && ipam['type'] !== undefined && typeof ipam['type'] !== 'string') {
    throw invalid('"ipam.type" must be a string');
  }
  if (ipam && ipam['routes'] !== undefined && !Array.isArray(ipam['routes'])) {
    throw invalid('"ipam.routes" must be a list');
  }
  const validAttachments = parseAttachments(
    conf['cni.dev/valid-attachments'] ?? conf['cni.dev/attachments'],
  );
  return {
    name,
    subnetFile: absolutePath(conf, 'subnetFile', DEFAULT_SUBNET_FILE),
    dataDir: absolutePath(conf, 'dataDir', DEFAULT_DATA_DIR),
    daemonSocket: socketPath(conf),
    subnetWaitSeconds: typeof wait === 'number' ? wait : DEFAULT_SUBNET_WAIT_SECONDS,
    delegate,
    ipam,
    runtimeConfig: optionalObject(conf, 'runtimeConfig'),
    args: optionalObject(conf, 'args'),
    // Only CHECK reads it (a later plugin's MAC, check.ts); DEL replays weft's own stored result. One that
    // is no object is ignored: refusing it (code 7) would fail every DEL and keep the attachment for ever.
    prevResult: isObject(conf['prevResult']) ? conf['prevResult'] : undefined,
    validAttachments,
  };
}
