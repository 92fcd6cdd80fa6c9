/**
 * The CNI unit tests' scratch directory: `bin/bridge` (an executable that findPlugin accepts as the
 * delegate; the tests' fake invokers never run it) and a `subnet.env` for 10.5.72.1/24 of 10.5.0.0/16.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function cniPluginDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'bridge'), '#!/bin/false\n', { mode: 0o755 });
  writeFileSync(
    join(dir, 'subnet.env'),
    'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
  );
  return dir;
}

/** A weft network config (stdin) for network `net1` on that directory: its subnet.env, state in `state/`. */
export function pluginDirConf(dir: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'net1',
      type: 'weft',
      subnetFile: join(dir, 'subnet.env'),
      dataDir: join(dir, 'state'),
      subnetWaitSeconds: 0,
    }),
  );
}
