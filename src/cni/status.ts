/**
 * STATUS (spec 1.1, docs/cni-contract.md A4): code 50 while weftd does not serve the shim's calls (ADD would
 * answer 11), subnet.env is missing or unusable (weftd not ready) or the delegate plugin is not installed; otherwise the delegate's STATUS decides, if it speaks 1.1.0 (a
 * delegate that predates STATUS, like Debian 12's bridge, counts as available).
 */
import type { CmdContext, CniDeps } from './deps.js';
import { buildDelegateConfig } from './delegate-config.js';
import { CniCode, CniError } from './errors.js';
import { delegateSupports, findPlugin } from './invoke.js';
import { loadSubnetEnv, notReady } from './load-subnet.js';
import type { SubnetEnv } from '../lease/subnet-env.js';

export async function cmdStatus(ctx: CmdContext, deps: CniDeps): Promise<void> {
  const { conf } = ctx;
  // Run by the shim because weftd did not serve this call: ADD would answer 11 now, so STATUS must not
  // say ready. 50, not 51: running containers keep their network while weftd is away.
  if (deps.addUnavailable !== undefined)
    throw new CniError(
      CniCode.NotAvailable,
      `weftd is not serving CNI requests on this host: ${deps.addUnavailable}`,
      'ADD runs inside weftd: start weftd (or wait until it has restarted); running containers are not affected',
    );
  let env: SubnetEnv;
  try {
    env = loadSubnetEnv(conf.subnetFile, deps);
  } catch (err) {
    if (err instanceof CniError && err.code === CniCode.TryAgainLater)
      throw notReady(conf.subnetFile, CniCode.NotAvailable);
    throw new CniError(CniCode.NotAvailable, `weft is not ready: ${(err as Error).message}`);
  }
  const delegate = buildDelegateConfig(conf, env, '1.1.0');
  let plugin: string;
  try {
    plugin = findPlugin(String(delegate['type']), ctx.env.path);
  } catch (err) {
    throw new CniError(CniCode.NotAvailable, `weft cannot serve ADD: ${(err as Error).message}`);
  }
  if (!(await delegateSupports(plugin, '1.1.0', deps.invoke))) return;
  await deps.invoke({ plugin, command: 'STATUS', env: {}, stdin: JSON.stringify(delegate) });
}
