/**
 * DEL (docs/cni-contract.md A4, A8, A13.5): idempotent. No state → success (already deleted, or never added;
 * the delegate's DEL still runs best-effort to release a reservation whose state was lost). Otherwise the delegate's DEL runs with the stored config (subnet.env is not needed, so DEL works after
 * weftd is gone); the state is removed only after it succeeded, so a failed DEL is retried by the runtime
 * instead of leaking the address (flannel removes it first). Unreadable state is never a DEL failure
 * (docs/pitfalls.md C2): weft rebuilds the delegate config from subnet.env when it can, else keeps the file for GC.
 */
import { afterAnswer, callerPath, type CmdContext, type CniDeps } from './deps.js';
import { buildDelegateConfig } from './delegate-config.js';
import { netnsRefusal } from './host-netns.js';
import { CniError } from './errors.js';
import { findPlugin } from './invoke.js';
import { loadSubnetEnv } from './load-subnet.js';
import type { JsonObject } from './netconf.js';
import { parseResult, renderResult } from './result.js';
import { StateStore } from './state.js';
import { compareVersions, delegateVersionFor, isSupportedVersion } from './versions.js';

export async function cmdDel(ctx: CmdContext, deps: CniDeps): Promise<void> {
  const { env, conf } = ctx;
  // The host's own netns: release the address only, never delete a host interface; a path that is no
  // netns (its mount is gone): nothing to delete in it either (host-netns.ts).
  const refused = netnsRefusal(callerPath(deps.callerPid, env.netns));
  const netnsEnv: Record<string, string> = refused ? { CNI_NETNS: '' } : {};
  if (refused)
    deps.log.warn(
      refused === 'host'
        ? "DEL: CNI_NETNS is this host's own network namespace; releasing the address only"
        : 'DEL: CNI_NETNS is not a network namespace (its mount is gone, or another kind); releasing the address only',
      { netns: env.netns, ifname: env.ifname },
    );
  const store = new StateStore(conf.dataDir);
  const read = store.read(conf.name, env.containerId, env.ifname);
  if (read.kind === 'missing') {
    // Already deleted, never added, or the state was lost (docs/pitfalls.md C1). The delegate's DEL is
    // idempotent, so it runs with a config rebuilt from subnet.env to release any address still reserved
    // for this attachment; any failure is only logged: there is nothing of weft's to clean up.
    try {
      await invokeDelegateDel(rebuildDelegate(ctx, deps), undefined, env.path, netnsEnv, deps);
    } catch (err) {
      deps.log.debug('DEL without state: delegate DEL skipped or failed', {
        error: (err as Error).message,
      });
    }
    return;
  }
  let delegate: JsonObject;
  let stored: JsonObject | undefined;
  if (read.kind === 'corrupt') {
    deps.log.warn('DEL: stored state is unreadable; rebuilding the delegate config', {
      reason: read.reason,
    });
    try {
      delegate = rebuildDelegate(ctx, deps);
    } catch (err) {
      deps.log.warn('DEL: cannot rebuild the delegate config; keeping the state for GC', {
        error: (err as Error).message,
      });
      return;
    }
  } else {
    delegate = read.state.delegate;
    stored = read.state.result;
  }
  await invokeDelegateDel(delegate, stored, env.path, netnsEnv, deps);
  // Gone before the answer; inside weftd the file's freeing (its last close) comes after it.
  store.remove(
    conf.name,
    env.containerId,
    env.ifname,
    deps.afterAnswer && ((close) => afterAnswer(deps, 'freeing the removed state file', close)),
  );
}

/** The delegate config ADD would build now (from subnet.env), for state that is lost or unreadable. */
export const rebuildDelegate = (ctx: CmdContext, deps: CniDeps): JsonObject =>
  buildDelegateConfig(
    ctx.conf,
    loadSubnetEnv(ctx.conf.subnetFile, deps),
    delegateVersionFor(ctx.version),
  );

/** Runs the delegate's DEL with the stored config (plus `prevResult` where the delegate's version has it). */
export async function invokeDelegateDel(
  delegate: JsonObject,
  storedResult: JsonObject | undefined,
  cniPath: readonly string[],
  envOverride: Record<string, string>,
  deps: CniDeps,
): Promise<void> {
  const plugin = findPlugin(String(delegate['type']), cniPath);
  const input: JsonObject = { ...delegate };
  const dv = delegate['cniVersion'];
  if (storedResult && isSupportedVersion(dv) && compareVersions(dv, '0.4.0') >= 0) {
    try {
      input['prevResult'] = renderResult(parseResult(storedResult), dv);
    } catch {
      /* a bad stored result must not block DEL */
    }
  }
  await delegateDel(deps, plugin, JSON.stringify(input), envOverride);
}

/**
 * The delegate's DEL, once more without CNI_ARGS when it refused them: the Go library parses CNI_ARGS on
 * every command (cni pkg/types/args.go, errors "ARGS: …": a pair without "=", an unknown key without
 * IgnoreUnknown, a bad IP= value), so a runtime repeating the ADD's bad CNI_ARGS on DEL would fail every
 * DEL and keep the state for ever. DEL needs none of them (host-local releases by container id and ifname).
 */
export async function delegateDel(
  deps: CniDeps,
  plugin: string,
  stdin: string,
  envOverride: Readonly<Record<string, string>>,
): Promise<void> {
  try {
    await deps.invoke({ plugin, command: 'DEL', env: envOverride, stdin });
  } catch (err) {
    if (
      !(err instanceof CniError && err.message.includes('ARGS: ')) ||
      envOverride['CNI_ARGS'] === ''
    )
      throw err;
    deps.log.warn('delegate DEL refused CNI_ARGS; retrying without them', { error: err.message });
    await deps.invoke({ plugin, command: 'DEL', env: { ...envOverride, CNI_ARGS: '' }, stdin });
  }
}
