/**
 * CNI errors (docs/design.md C10, docs/cni-contract.md A7). The plugin speaks the spec's numeric codes, not weft's
 * string codes: a `CniError` carries its code to the one place (`main.ts`) that prints
 * `{cniVersion, code, msg, details}` on stdout. Anything that is not a `CniError` becomes 999.
 */

/** The spec's well-known codes plus weft's own (100+ is plugin-specific). */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50,
  NotAvailableDegraded: 51,
  /** subnet.env exists but is malformed (weft-specific). */
  SubnetEnvInvalid: 100,
  /** The delegate plugin binary is not in any CNI_PATH directory (weft-specific). */
  DelegateNotFound: 101,
  /** ADD for an attachment weft already holds state for, without a DEL first (weft-specific). */
  AlreadyAttached: 102,
  /** CHECK found the container's interface, addresses or routes differ from the ADD result. */
  CheckFailed: 103,
  /** A delegate produced output weft cannot use (weft-specific). */
  DelegateBadOutput: 104,
  /** Every address of this host's subnet is reserved (IPAM said so; weft-specific). */
  SubnetExhausted: 105,
  Internal: 999,
} as const;

export type CniCodeValue = (typeof CniCode)[keyof typeof CniCode] | number;

export class CniError extends Error {
  readonly code: CniCodeValue;
  readonly details: string | undefined;

  constructor(code: CniCodeValue, msg: string, details?: string, options?: { cause?: unknown }) {
    super(msg, options);
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }
}

export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

/** The spec's error object for `err`; unknown errors become 999 with their message. */
export function toErrorJson(err: unknown, cniVersion: string): CniErrorJson {
  if (err instanceof CniError) {
    const out: CniErrorJson = { cniVersion, code: err.code, msg: err.message };
    if (err.details !== undefined && err.details !== '') out.details = err.details;
    return out;
  }
  const msg = err instanceof Error ? err.message : String(err);
  return { cniVersion, code: CniCode.Internal, msg: `internal error: ${msg}` };
}
