/**
 * Reading subnet.env for the commands: a missing file means "weftd not ready yet" (code 11, or 50 for
 * STATUS); a malformed one is code 100 naming every problem. ADD waits a bounded time for the file so pods
 * created while the node boots are not failed at once (docs/pitfalls.md A10).
 */
import type { CniDeps } from './deps.js';
import { CniCode, CniError } from './errors.js';
import { parseSubnetEnv, SubnetEnvError, type SubnetEnv } from '../lease/subnet-env.js';

const POLL_MS = 100;

export function notReady(file: string, code: number = CniCode.TryAgainLater): CniError {
  return new CniError(
    code,
    `weft is not ready: ${file} does not exist`,
    'weftd writes it once it holds a subnet lease; check that weftd runs on this node (weftctl status)',
  );
}

/** Reads and parses subnet.env once; throws 11 (missing) or 100 (invalid). */
export function loadSubnetEnv(file: string, deps: CniDeps): SubnetEnv {
  let text: string | undefined;
  try {
    text = deps.readFile(file);
  } catch (err) {
    throw new CniError(CniCode.IoFailure, `cannot read ${file}: ${(err as Error).message}`);
  }
  if (text === undefined) throw notReady(file);
  try {
    return parseSubnetEnv(text, file);
  } catch (err) {
    if (err instanceof SubnetEnvError) {
      throw new CniError(
        CniCode.SubnetEnvInvalid,
        err.message,
        'fix or remove the file; weftd rewrites it on start',
      );
    }
    throw err;
  }
}

/** Like loadSubnetEnv, but while the file is missing polls for up to `waitSeconds`. */
export async function waitForSubnetEnv(
  file: string,
  waitSeconds: number,
  deps: CniDeps,
): Promise<SubnetEnv> {
  const deadline = deps.now() + waitSeconds * 1000;
  for (;;) {
    try {
      return loadSubnetEnv(file, deps);
    } catch (err) {
      if (
        !(err instanceof CniError) ||
        err.code !== CniCode.TryAgainLater ||
        deps.now() >= deadline
      ) {
        throw err;
      }
    }
    await deps.sleep(Math.min(POLL_MS, Math.max(1, deadline - deps.now())));
  }
}
