/**
 * The one place where the `netlink` package's errors become typed errors (docs/design.md C10). The package
 * rejects with plain `Error('Request rejected: EEXIST')` (no errno property, no extack), with
 * `Error('Timeout has been reached')` for our per-request timeout, and with errno exceptions for socket
 * failures. Nobody else looks at those messages.
 */
import { constants } from 'node:os';
import { WeftError, type ErrorCode } from '../errors.js';

/** Names a kernel errno we branch on, or a pseudo-errno for failures that are not kernel answers. */
export type NetlinkErrno =
  | 'EEXIST'
  | 'ENOENT'
  | 'ESRCH'
  | 'ENODEV'
  | 'EINVAL'
  | 'EBUSY'
  | 'EPERM'
  | 'EOPNOTSUPP'
  | 'ENOBUFS'
  | 'ENETUNREACH'
  | 'EADDRNOTAVAIL'
  | 'ETIMEDOUT'
  | 'ESOCKET'
  | 'EINTR_DUMP'
  | (string & {});

export class NetlinkError extends WeftError {
  /** errno name ('EEXIST', …), 'ETIMEDOUT' for our timeout, 'ESOCKET' for a broken socket. */
  readonly errno: NetlinkErrno;
  /** The façade operation, e.g. 'routeReplace'. */
  readonly op: string;
  /** What it acted on, e.g. '10.5.2.0/24 via 10.5.2.0 dev 7'. */
  readonly object: string;

  constructor(
    code: ErrorCode,
    errno: NetlinkErrno,
    op: string,
    object: string,
    cause?: unknown,
    retryable = false,
  ) {
    super(code, `netlink ${op} ${object}: ${errno}`, {
      cause,
      details: { errno, op, object },
      retryable,
    });
    this.errno = errno;
    this.op = op;
    this.object = object;
  }
}

const REJECTED = /Request rejected: (E[A-Z0-9]+)/;
const TIMEOUT = /Timeout has been reached/;
const ERRNO_CODE = /^E[A-Z0-9]+$/;

/** Transient errnos: trying again later may succeed. */
const RETRYABLE = new Set([
  'EBUSY',
  'ENOBUFS',
  'EAGAIN',
  'EINTR',
  'ETIMEDOUT',
  'ESOCKET',
  'EINTR_DUMP',
]);

/** No answer from the kernel by the request's deadline. */
export function timeoutError(op: string, object: string, cause?: unknown): NetlinkError {
  return new NetlinkError('E_NETLINK_TIMEOUT', 'ETIMEDOUT', op, object, cause, true);
}

/** The socket carrying the request was lost or closed (`errno` names why when known). */
export function socketError(
  op: string,
  object: string,
  errno: string = 'ESOCKET',
  cause?: unknown,
): NetlinkError {
  return new NetlinkError('E_NETLINK_SOCKET', errno, op, object, cause, true);
}

/** A request that cannot be encoded (malformed input): never sent, never retried. */
export function invalidRequest(op: string, err: unknown): NetlinkError {
  return new NetlinkError('E_NETLINK', 'EINVAL', op, String(err), err, false);
}

/**
 * Converts anything the `netlink` package threw for operation `op` on `object` into a NetlinkError.
 * A NetlinkError passes through unchanged.
 */
export function toNetlinkError(err: unknown, op: string, object: string): NetlinkError {
  if (err instanceof NetlinkError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const rejected = REJECTED.exec(message);
  if (rejected) {
    const errno = rejected[1]!;
    return new NetlinkError('E_NETLINK', errno, op, object, err, RETRYABLE.has(errno));
  }
  if (TIMEOUT.test(message)) return timeoutError(op, object, err);
  const code = (err as { code?: unknown } | null)?.code;
  return socketError(
    op,
    object,
    typeof code === 'string' && ERRNO_CODE.test(code) ? code : 'ESOCKET',
    err,
  );
}

/** True for a NetlinkError whose errno is one of `names`. */
export function isErrno(err: unknown, ...names: NetlinkErrno[]): boolean {
  return err instanceof NetlinkError && names.includes(err.errno);
}

/** "Already absent" answers of delete operations (routes: ESRCH, neighbours: ENOENT, links: ENODEV). */
export function isAbsent(err: unknown): boolean {
  return isErrno(err, 'ESRCH', 'ENOENT', 'ENODEV', 'EADDRNOTAVAIL');
}

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(constants.errno).map(([name, num]) => [num, name]),
);

/** A kernel rejection carried as a number (an NLMSG_ERROR from the bulk path) → NetlinkError. */
export function errnoFromNumber(errno: number, op: string, object: string): NetlinkError {
  return toNetlinkError(
    new Error(`Request rejected: ${ERRNO_NAMES.get(errno) ?? `E${errno}`}`),
    op,
    object,
  );
}
