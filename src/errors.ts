/**
 * Typed errors with stable codes (docs/design.md C10). Every error weft raises on purpose is a WeftError
 * with a machine-readable `code`; callers branch on `code` or `isRetryable()`, never on message text.
 * Messages are lowercase, name the object first, then the cause.
 */

export type ErrorCode =
  | 'E_CONFIG_INVALID'
  | 'E_CONFIG_NOT_FOUND'
  | 'E_UNKNOWN_BACKEND'
  | 'E_OPTION_INVALID'
  | 'E_LEASE_EXHAUSTED'
  | 'E_LEASE_LOST'
  | 'E_LEASE_CONFLICT'
  | 'E_LEASE_INVALID'
  | 'E_ADDRESS_INVALID'
  | 'E_ETCD_UNAVAILABLE'
  | 'E_ETCD_TLS'
  | 'E_ETCD_AUTH'
  | 'E_ETCD_COMPACTED'
  | 'E_ETCD_LEASE_NOT_FOUND'
  | 'E_NETLINK'
  | 'E_NETLINK_TIMEOUT'
  | 'E_NETLINK_SOCKET'
  | 'E_NETNS_NOT_FOUND'
  | 'E_NATIVE'
  | 'E_NATIVE_UNAVAILABLE'
  | 'E_INTERFACE'
  | 'E_FIREWALL'
  | 'E_FLANNEL_LEFTOVERS'
  | 'E_ALREADY_RUNNING'
  | 'E_IO'
  /** A file of weftd's own state that only the operator can fix (a planted link, another owner, …). */
  | 'E_STATE_FILE'
  | 'E_ABORTED'
  | 'E_INTERNAL';

const brand = Symbol.for('weft.error');
const retryableBrand = Symbol.for('weft.error.retryable');

export interface WeftErrorOptions {
  cause?: unknown;
  details?: Readonly<Record<string, unknown>>;
  retryable?: boolean;
}

export class WeftError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;
  readonly [brand] = true;
  readonly [retryableBrand]: boolean;

  constructor(code: ErrorCode, message: string, options: WeftErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details;
    this[retryableBrand] = options.retryable ?? false;
  }

  /**
   * `x instanceof WeftError` holds for any branded weft error, even one from another copy of this module
   * (the CNI bundle, a second install). Subclasses keep the ordinary prototype check, so
   * `instanceof AbortedError` is not true of every WeftError.
   */
  static [Symbol.hasInstance](this: unknown, value: unknown): boolean {
    if (this !== WeftError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[brand] === true
    );
  }
}

/** The network config in etcd, a flag or a file is wrong; the message names the field and the fix. */
export class ConfigError extends WeftError {
  constructor(message: string, options: WeftErrorOptions & { code?: ErrorCode } = {}) {
    super(options.code ?? 'E_CONFIG_INVALID', message, options);
  }
}

/** The operation was aborted through its AbortSignal. */
export class AbortedError extends WeftError {
  constructor(message = 'operation aborted') {
    super('E_ABORTED', message);
  }
}

/** True when the failed operation may succeed if tried again later (a brand, never message text). */
export function isRetryable(err: unknown): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    (err as Record<symbol, unknown>)[retryableBrand] === true
  );
}

/** True for a file-system error of refused access (EACCES, EPERM): a mode, an owner or a missing capability. */
export function isAccessDenied(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'EACCES' || code === 'EPERM';
}

export function hasCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof WeftError && err.code === code;
}

/**
 * A value from hostile input, shown in an error message: JSON, at most `max` characters, and never a
 * throw (a value nested deep enough overflows JSON.stringify's recursion; a cycle cannot be shown).
 */
export function showValue(value: unknown, max = 80): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Array.isArray(value) ? '[…]' : typeof value === 'object' ? '{…}' : String(value);
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** A short string for logs: the message, and the cause chain's messages. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 5; depth++) {
    const text = cur instanceof Error ? cur.message : String(cur);
    // a wrapper that already quotes its cause's message (`… is not valid JSON: <cause>`) says it once
    if (depth === 0 || !parts[parts.length - 1]!.endsWith(text)) parts.push(text);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.join(': ');
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError();
}
