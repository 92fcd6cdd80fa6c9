/**
 * weftd's exit codes (documented in README.md, section weftd) and the mapping from a fatal error to a
 * code and one line for the operator. Classification is by error code, never by message text.
 */
import { describeError, hasCode, type ErrorCode } from '../errors.js';

/** Exit codes of weftd (documented in README.md, section weftd). */
export const EXIT = {
  ok: 0,
  fatal: 1,
  usage: 2,
  config: 3,
  iface: 4,
  leaseLost: 5,
  leaseExhausted: 6,
  firewall: 7,
  flannelLeftovers: 8,
  stateFile: 9,
} as const;

export interface DaemonResult {
  readonly exitCode: number;
  /** One line for the operator. */
  readonly message: string;
  readonly error?: unknown;
}

const etcdOptions = (m: string): string => `etcd client options: ${m}; check the --etcd-* flags`;
const badConfig = (m: string): string => `invalid network config: ${m}; nothing was programmed`;

/** Error code → exit code, and the operator's line around the error's own message (none: as it is). */
const BY_CODE: readonly [ErrorCode, number, ((msg: string) => string)?][] = [
  ['E_OPTION_INVALID', EXIT.usage, etcdOptions],
  ['E_ETCD_TLS', EXIT.usage, etcdOptions],
  ['E_ETCD_AUTH', EXIT.usage, etcdOptions],
  ['E_CONFIG_INVALID', EXIT.config, badConfig],
  ['E_UNKNOWN_BACKEND', EXIT.config, badConfig],
  ['E_INTERFACE', EXIT.iface],
  [
    'E_LEASE_LOST',
    EXIT.leaseLost,
    (m) =>
      `lease lost: ${m}; another host may now hold this subnet. Restart weftd to lease a new one`,
  ],
  ['E_LEASE_EXHAUSTED', EXIT.leaseExhausted],
  ['E_FIREWALL', EXIT.firewall],
  ['E_FLANNEL_LEFTOVERS', EXIT.flannelLeftovers],
  // a restart would meet the same file (weftd.service: RestartPreventExitStatus)
  ['E_STATE_FILE', EXIT.stateFile],
];

/** The exit code and the operator's message for a fatal error. */
export function exitFor(err: unknown): DaemonResult {
  const msg = describeError(err);
  const hit = BY_CODE.find(([code]) => hasCode(err, code));
  return { exitCode: hit?.[1] ?? EXIT.fatal, message: hit?.[2]?.(msg) ?? msg, error: err };
}
