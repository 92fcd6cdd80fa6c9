/**
 * weftd's exit codes (documented in README.md, section weftd) and the mapping from a fatal error to a
 * code and one line for the operator. Classification is by error code, never by message text.
 */
import { describeError, hasCode } from '../errors.js';

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

/** The exit code and the operator's message for a fatal error. */
export function exitFor(err: unknown): DaemonResult {
  const msg = describeError(err);
  if (
    hasCode(err, 'E_OPTION_INVALID') ||
    hasCode(err, 'E_ETCD_TLS') ||
    hasCode(err, 'E_ETCD_AUTH')
  ) {
    return {
      exitCode: EXIT.usage,
      message: `etcd client options: ${msg}; check the --etcd-* flags`,
      error: err,
    };
  }
  if (hasCode(err, 'E_CONFIG_INVALID') || hasCode(err, 'E_UNKNOWN_BACKEND')) {
    return {
      exitCode: EXIT.config,
      message: `invalid network config: ${msg}; nothing was programmed`,
      error: err,
    };
  }
  if (hasCode(err, 'E_INTERFACE')) return { exitCode: EXIT.iface, message: msg, error: err };
  if (hasCode(err, 'E_LEASE_LOST')) {
    return {
      exitCode: EXIT.leaseLost,
      message: `lease lost: ${msg}; another host may now hold this subnet. Restart weftd to lease a new one`,
      error: err,
    };
  }
  if (hasCode(err, 'E_LEASE_EXHAUSTED'))
    return { exitCode: EXIT.leaseExhausted, message: msg, error: err };
  if (hasCode(err, 'E_FIREWALL')) return { exitCode: EXIT.firewall, message: msg, error: err };
  if (hasCode(err, 'E_FLANNEL_LEFTOVERS'))
    return { exitCode: EXIT.flannelLeftovers, message: msg, error: err };
  // a restart would meet the same file (weftd.service: RestartPreventExitStatus)
  if (hasCode(err, 'E_STATE_FILE')) return { exitCode: EXIT.stateFile, message: msg, error: err };
  return { exitCode: EXIT.fatal, message: msg, error: err };
}
