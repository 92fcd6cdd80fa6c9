/**
 * CNI spec versions weft speaks (docs/cni-contract.md A1). Matching is an exact string match; a config without
 * `cniVersion` is 0.1.0, which weft does not support.
 */
import { CniCode, CniError } from './errors.js';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = '1.1.0';
/** Highest version the reference plugins shipped by Debian 12 accept; delegates are spoken to in it. */
export const DELEGATE_MAX_VERSION: CniVersion = '1.0.0';

export function isSupportedVersion(v: unknown): v is CniVersion {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Order of two supported versions (SUPPORTED_VERSIONS is ascending): <0, 0, >0. */
export const compareVersions = (a: CniVersion, b: CniVersion): number =>
  SUPPORTED_VERSIONS.indexOf(a) - SUPPORTED_VERSIONS.indexOf(b);

/** Throws code 1 unless `v` is supported and at least `minimum` (CHECK needs 0.4.0, STATUS/GC 1.1.0). */
export function requireVersion(v: string, command: string, minimum?: CniVersion): CniVersion {
  if (!isSupportedVersion(v)) {
    throw new CniError(
      CniCode.IncompatibleVersion,
      `incompatible CNI versions: config is "${v}", plugin supports [${SUPPORTED_VERSIONS.map((s) => `"${s}"`).join(' ')}]`,
      `set "cniVersion" to one of ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  if (minimum !== undefined && compareVersions(v, minimum) < 0) {
    throw new CniError(
      CniCode.IncompatibleVersion,
      `config version "${v}" does not allow ${command}`,
      `${command} needs cniVersion ${minimum} or later`,
    );
  }
  return v;
}

/** The version weft speaks to its delegate for a request in `requested` (never above what Debian's plugins take). */
export function delegateVersionFor(requested: CniVersion): CniVersion {
  return compareVersions(requested, DELEGATE_MAX_VERSION) > 0 ? DELEGATE_MAX_VERSION : requested;
}
