/**
 * Reading the `Backend` section of the network config (docs/flannel-compat.md §12–§13), shared by the
 * backends' config parsers: keys are matched case-insensitively, a null value counts as not given (like
 * Go's encoding/json), unknown keys are reported through `warn`, and every bad value raises a
 * ConfigError naming the key, the value and the rule.
 */
import { foldKey } from '../subnet/config-keys.js';
import { ConfigError, showValue } from '../errors.js';

/** One given key: its spelling in the config, and its value (never null or undefined). */
export interface BackendField {
  readonly key: string;
  readonly value: unknown;
}

export interface BackendKeys {
  /** The backend type, for the warning about unknown keys. */
  readonly type: string;
  /** Keys the backend reads, lower-case (including 'type'). */
  readonly known: readonly string[];
  /** Keys accepted and ignored without a warning (e.g. flannel's Windows-only ones), lower-case. */
  readonly ignored?: readonly string[];
}

/**
 * A field of a lease's BackendData as Go's encoding/json (flannel's reader) finds it: any key equal to
 * it ignoring case as Go folds it (`{"vni":1}` written by hand reads as VNI; `ſ` is `s`,
 * src/subnet/config-keys.ts), the exact spelling first; a null leaves the field unset, as in Go. Two
 * spellings with values are for `spelledTwice` to refuse.
 */
export function jsonField(d: Readonly<Record<string, unknown>>, name: string): unknown {
  const exact = Object.hasOwn(d, name) ? d[name] : undefined;
  if (exact !== undefined && exact !== null) return exact;
  const lower = foldKey(name);
  const key = Object.keys(d).find((k) => d[k] !== null && foldKey(k) === lower);
  return key === undefined ? exact : d[key];
}

/**
 * The spellings of `name` in `d` (equal ignoring case as Go folds it) whose value is not null, when
 * there are two or more; else null. Go's encoding/json (flannel's reader) takes the one written last,
 * which a parsed object no longer tells: callers refuse such a lease rather than guess (as a config
 * naming one field twice is refused, src/subnet/config-keys.ts). A null leaves the field unset in Go.
 */
export function spelledTwice(d: Readonly<Record<string, unknown>>, name: string): string[] | null {
  const lower = foldKey(name);
  let first: string | undefined;
  let all: string[] | null = null;
  for (const k of Object.keys(d)) {
    if (d[k] === null || foldKey(k) !== lower) continue;
    if (first === undefined) first = k;
    else (all ??= [first]).push(k);
  }
  return all;
}

/** Backend keys whose value is a secret (wireguard's PSK, shared by every host), lower-case. */
const SECRET_BACKEND_KEYS: readonly string[] = ['psk'];

/**
 * The network config `raw` (top level, as read from etcd) with every secret in its `Backend` section
 * replaced by "(hidden)", for logs: a log line must never carry the PSK (journald is read by more
 * people than etcd's config key).
 */
export function withoutSecrets(raw: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw };
  for (const [k, v] of Object.entries(raw)) {
    if (foldKey(k) !== 'backend' || typeof v !== 'object' || v === null || Array.isArray(v))
      continue;
    const backend: Record<string, unknown> = { ...(v as Record<string, unknown>) };
    for (const bk of Object.keys(backend)) {
      if (SECRET_BACKEND_KEYS.includes(foldKey(bk))) backend[bk] = '(hidden)';
    }
    out[k] = backend;
  }
  return out;
}

/** Linux interface names: 1–15 of A-Z a-z 0-9 _ . - */
export const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** Indexes `raw` by its keys folded as Go does (foldKey); the returned lookup yields the given field or undefined. */
export function backendFields(
  raw: Readonly<Record<string, unknown>>,
  keys: BackendKeys,
  warn: (msg: string, fields: Record<string, unknown>) => void,
): (lowerKey: string) => BackendField | undefined {
  const given = new Map<string, BackendField>();
  for (const [key, value] of Object.entries(raw)) {
    const k = foldKey(key);
    if (!keys.known.includes(k)) {
      if (!keys.ignored?.includes(k)) warn(`unknown ${keys.type} backend option ignored`, { key });
      continue;
    }
    if (value !== null && value !== undefined) given.set(k, { key, value });
  }
  return (k) => given.get(k);
}

export function badBackendValue(key: string, value: unknown, rule: string): ConfigError {
  return new ConfigError(`Backend.${key}: ${showValue(value)} is invalid: ${rule}`, {
    details: { field: `Backend.${key}`, value },
  });
}

export function intField(f: BackendField, min: number, max: number): number {
  const v = f.value;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw badBackendValue(f.key, v, `must be an integer from ${min} to ${max}`);
  }
  return v;
}

/** A UDP port key: not given or flannel's 0 ("the default") is `dflt`. */
export function portField(f: BackendField | undefined, dflt: number): number {
  const v = f ? intField(f, 0, 65_535) : 0;
  return v === 0 ? dflt : v;
}

export function boolField(f: BackendField): boolean {
  if (typeof f.value !== 'boolean') throw badBackendValue(f.key, f.value, 'must be true or false');
  return f.value;
}

export function ifnameField(f: BackendField): string {
  if (typeof f.value !== 'string' || !IFNAME.test(f.value)) {
    throw badBackendValue(
      f.key,
      f.value,
      'must be a Linux interface name (1–15 of A-Z a-z 0-9 _ . -)',
    );
  }
  return f.value;
}
