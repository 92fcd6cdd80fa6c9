/**
 * weftctl's exit codes (documented in `weftctl --help` and README.md). Scripts branch on these: 0 means
 * the command ran and found nothing wrong.
 */
import { hasCode } from '../errors.js';

export const EXIT = {
  /** Everything checked is fine. */
  ok: 0,
  /** The command ran and found a problem (a doctor error, a peer not ok, packet loss, a dropped trace). */
  problem: 1,
  /** Bad flag, argument or environment variable. */
  usage: 2,
  /** The network config (in etcd or given to `config set|validate`) is invalid. */
  config: 3,
  /** etcd could not be reached, or refused the request (TLS, auth). */
  etcd: 4,
  /** This host could not be inspected (netlink, permissions, a tool missing) or another failure. */
  failed: 5,
  /** The lease, subnet or config asked for does not exist. */
  notFound: 6,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const ETCD_CODES = ['E_ETCD_UNAVAILABLE', 'E_ETCD_TLS', 'E_ETCD_AUTH', 'E_ETCD_COMPACTED'] as const;
/** An error of etcd (unreachable, TLS, auth, compacted): exit 4. */
export const isEtcdError = (err: unknown): boolean => ETCD_CODES.some((c) => hasCode(err, c));

/** The exit code for an error that stopped a command. */
export function exitForError(err: unknown): ExitCode {
  if (hasCode(err, 'E_OPTION_INVALID') || hasCode(err, 'E_ADDRESS_INVALID')) return EXIT.usage;
  if (hasCode(err, 'E_CONFIG_INVALID') || hasCode(err, 'E_UNKNOWN_BACKEND')) return EXIT.config;
  if (hasCode(err, 'E_CONFIG_NOT_FOUND')) return EXIT.notFound;
  if (isEtcdError(err)) return EXIT.etcd;
  return EXIT.failed;
}
