/**
 * `weftctl doctor`'s check for flannel's leftovers on this host (docs/migration-from-flannel.md,
 * docs/troubleshooting.md): the same finding weftd refuses to start on (exit 8), with the fix. Pure.
 */
import {
  CLEANUP_COMMAND,
  describeLeftovers,
  hasLeftovers,
  type FlannelLeftovers,
} from '../migration/flannel-leftovers.js';
import { fail, pass, type Check } from './doctor-check.js';

export function flannelChecks(found: FlannelLeftovers | null): Check[] {
  if (found === null) return [];
  if (!hasLeftovers(found)) return [pass('flannel', 'no flannel leftovers on this host')];
  return [
    fail(
      'flannel',
      `flannel's dataplane is still here (weftd will not start, exit 8): ${describeLeftovers(found).join('; ')}`,
      ['systemctl disable --now flanneld', 'weftctl cleanup --flannel', CLEANUP_COMMAND],
    ),
  ];
}
