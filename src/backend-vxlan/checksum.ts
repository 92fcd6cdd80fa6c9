/**
 * The VXLAN UDP checksum workaround (docs/flannel-compat.md §12, docs/pitfalls.md B1): kernels before 5.7 corrupt
 * checksums of VXLAN packets that were MASQUERADEd with tx checksum offload on (fixed by ea64d8d6c675).
 * Turning offload off costs ~69 % of TCP throughput (docs/performance.md), so weft keeps it on unless the
 * kernel is affected or the operator asks.
 */
import { execFile } from 'node:child_process';
import { release } from 'node:os';
import type { ChecksumMode } from './config.js';
import { WeftError } from '../errors.js';

/** True for kernel releases older than 5.7 ('4.19.0-21-amd64' → true, '6.1.0' → false). */
export function kernelHasChecksumBug(kernelRelease: string = release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!m) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major < 5 || (major === 5 && minor < 7);
}

export function checksumWorkaroundWanted(mode: ChecksumMode, kernelRelease?: string): boolean {
  if (mode === 'on') return true;
  if (mode === 'off') return false;
  return kernelHasChecksumBug(kernelRelease);
}

/** `ethtool -K <dev> tx-checksum-ip-generic off`, inside `netns` when given. */
export function disableTxChecksum(dev: string, netns?: string): Promise<void> {
  const args = ['-K', dev, 'tx-checksum-ip-generic', 'off'];
  const [cmd, argv] = netns
    ? ['ip', ['netns', 'exec', netns, 'ethtool', ...args]]
    : ['ethtool', args];
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { timeout: 10_000 }, (err, _out, stderr) => {
      if (err) {
        reject(
          new WeftError(
            'E_INTERFACE',
            `cannot turn tx checksum offload off on ${dev}: ${stderr.trim() || err.message}`,
            { cause: err },
          ),
        );
      } else resolve();
    });
  });
}
