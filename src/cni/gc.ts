/**
 * GC (spec 1.1, docs/cni-contract.md A4): every stored attachment of this network that is not in
 * `cni.dev/valid-attachments` is released — the delegate's DEL with the stored config and no netns (the
 * bridge then only releases the IPAM reservation), then the state file. Keeps going on errors and reports
 * them all at the end; then forwards GC to the delegate if it speaks 1.1.0. Entries named like state that
 * are no regular file are skipped (logged), and temp files a crashed writer left are removed (state.ts).
 */
import type { CmdContext, CniDeps } from './deps.js';
import { invokeDelegateDel, rebuildDelegate } from './del.js';
import { CniCode, CniError } from './errors.js';
import { delegateSupports, findPlugin } from './invoke.js';
import type { JsonObject } from './netconf.js';
import { StateStore } from './state.js';

export async function cmdGC(ctx: CmdContext, deps: CniDeps): Promise<void> {
  const { conf } = ctx;
  if (conf.validAttachments === undefined) {
    throw new CniError(CniCode.InvalidNetworkConfig, 'GC needs "cni.dev/valid-attachments"');
  }
  const valid = new Set(conf.validAttachments.map((a) => `${a.containerID}@${a.ifname}`));
  const store = new StateStore(conf.dataDir);
  const errors: string[] = [];
  let rebuilt: JsonObject | undefined;
  const rebuild = (): JsonObject => (rebuilt ??= rebuildDelegate(ctx, deps));

  // Under the network's exclusive lock (lock.ts): no ADD or DEL of this network runs meanwhile.
  const attachments = store.list(conf.name, (name, kind) =>
    deps.log.warn('GC: skipping an entry named like a state file that is no regular file', {
      name,
      kind,
    }),
  );
  // hygiene, not a release: a temp file that cannot be removed is logged, never a GC failure
  const temps = store.removeStaleTemps(conf.name, deps.now(), (name, err) =>
    deps.log.warn('GC: cannot remove a stale temp file', { name, error: (err as Error).message }),
  );
  if (temps.length > 0) deps.log.info('GC removed temp files of crashed writers', { names: temps });
  for (const a of attachments) {
    if (valid.has(`${a.containerID}@${a.ifname}`)) continue;
    try {
      const read = store.read(conf.name, a.containerID, a.ifname);
      if (read.kind === 'corrupt')
        deps.log.warn('GC: unreadable state, releasing with a rebuilt delegate config', {
          reason: read.reason,
        });
      if (read.kind !== 'missing') {
        const [delegate, result] =
          read.kind === 'ok' ? [read.state.delegate, read.state.result] : [rebuild(), undefined];
        await invokeDelegateDel(delegate, result, ctx.env.path, gcEnv(a), deps);
      }
      store.remove(conf.name, a.containerID, a.ifname);
      deps.log.info('GC released attachment', { containerID: a.containerID, ifname: a.ifname });
    } catch (err) {
      errors.push(`${a.containerID}/${a.ifname}: ${(err as Error).message}`);
    }
  }

  try {
    const delegate: JsonObject = {
      ...rebuild(),
      cniVersion: '1.1.0',
      'cni.dev/valid-attachments': conf.validAttachments.map((a) => ({ ...a })),
    };
    const plugin = findPlugin(String(delegate['type']), ctx.env.path);
    if (await delegateSupports(plugin, '1.1.0', deps.invoke)) {
      await deps.invoke({ plugin, command: 'GC', env: {}, stdin: JSON.stringify(delegate) });
    }
  } catch (err) {
    const noSubnetEnv = err instanceof CniError && err.code === CniCode.TryAgainLater;
    if (!noSubnetEnv) errors.push(`delegate GC: ${(err as Error).message}`);
  }
  if (errors.length > 0) {
    throw new CniError(CniCode.IoFailure, `GC could not release everything: ${errors.join('; ')}`);
  }
}

function gcEnv(a: { containerID: string; ifname: string }): Record<string, string> {
  return { CNI_CONTAINERID: a.containerID, CNI_IFNAME: a.ifname, CNI_NETNS: '', CNI_ARGS: '' };
}
