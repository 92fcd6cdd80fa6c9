/**
 * ADD (docs/cni-contract.md A4, A13.4): wait for subnet.env, build the delegate config, persist it (fsync)
 * BEFORE the delegate runs, run the delegate, store its result, answer in the requested version. If
 * anything fails after the delegate may have allocated, the delegate's DEL undoes it; the stored state is
 * removed only when that undo succeeded (otherwise the runtime's DEL finds it and retries). State left by
 * an ADD that was never deleted is released first when its interface no longer exists.
 *
 * Durability (state.ts): both state writes are atomic (temp + rename). The first is written before the
 * delegate runs and not fsynced: its fsync's journal commit ran exactly while bridge and host-local
 * wrote their own files on the same file system and slowed them (about 2 ms of the delegate's time on
 * a loaded host, bench/cni.ts), and the second write replaces it within milliseconds. The second (with
 * the result) is fsynced in the background, like host-local's own files, which are not synced at all;
 * it is written before the answer in the standalone plugin, and inside weftd right after the answer,
 * still under the container's lock (deps.ts `afterAnswer`: a rename over the first file costs ext4 a
 * flush of the new data, half a millisecond and more of every ADD). A power loss, or weftd dying in that
 * moment, can thus lose or empty a state file or leave it without the result; nothing depends on it: DEL
 * then rebuilds the delegate config from subnet.env when needed (host-local releases by container id),
 * GC and a later ADD of the same attachment (liveness check for any stored state) clean up the rest.
 * Awaiting fsync put a whole journal commit (up to a second on a busy disk) on every ADD.
 */
import { afterAnswer, callerPath, type CmdContext, type CniDeps } from './deps.js';
import { buildDelegateConfig } from './delegate-config.js';
import { CniCode, CniError } from './errors.js';
import { delegateDel, invokeDelegateDel } from './del.js';
import { netnsRefusal } from './host-netns.js';
import { findPlugin } from './invoke.js';
import { waitForSubnetEnv } from './load-subnet.js';
import { formatNetwork } from '../ip/host-cidr.js';
import type { SubnetEnv } from '../lease/subnet-env.js';
import type { JsonObject } from './netconf.js';
import { parseResult, renderResult, sandboxInterface, type Result } from './result.js';
import { STATE_FORMAT, StateStore, type StoredAttachment } from './state.js';
import { delegateVersionFor } from './versions.js';

export async function cmdAdd(ctx: CmdContext, deps: CniDeps): Promise<JsonObject> {
  const { env, conf } = ctx;
  const refused = netnsRefusal(callerPath(deps.callerPid, env.netns));
  if (refused) {
    const [what, fix] = NETNS_REFUSED[refused];
    throw new CniError(CniCode.InvalidEnv, `CNI_NETNS ${JSON.stringify(env.netns)} ${what}`, fix);
  }
  const store = new StateStore(conf.dataDir);
  const before = store.read(conf.name, env.containerId, env.ifname);
  if (before.kind === 'ok') {
    await releaseStale(ctx, before.state, store, deps);
  }
  const subnetEnv = await waitForSubnetEnv(conf.subnetFile, conf.subnetWaitSeconds, deps);
  const delegate = buildDelegateConfig(conf, subnetEnv, delegateVersionFor(ctx.version));
  const plugin = findPlugin(String(delegate['type']), env.path);
  const state: StoredAttachment = {
    format: STATE_FORMAT,
    network: conf.name,
    containerID: env.containerId,
    ifname: env.ifname,
    delegate,
  };
  // Not fsynced: the state with the result replaces it within milliseconds and is (see the header).
  store.write(state, { sync: false });
  const stdin = JSON.stringify(delegate);
  deps.log.debug('delegate ADD', { plugin, config: delegate });

  const undo = async (why: unknown): Promise<never> => {
    try {
      await delegateDel(deps, plugin, stdin, {});
      store.remove(conf.name, env.containerId, env.ifname);
    } catch (err) {
      deps.log.warn('undo after failed ADD did not complete; the runtime DEL will retry', {
        error: (err as Error).message,
      });
    }
    throw why;
  };

  let out: string;
  try {
    out = await deps.invoke({ plugin, command: 'ADD', env: {}, stdin });
  } catch (err) {
    return undo(explainAddError(err, subnetEnv));
  }
  let raw: JsonObject;
  let result: Result;
  try {
    const parsed: unknown = JSON.parse(out);
    result = parseResult(parsed);
    raw = parsed as JsonObject;
    await fillSandboxMac(ctx, result, deps);
    const withResult: StoredAttachment = { ...state, result: raw };
    afterAnswer(deps, 'storing the ADD result', () => store.write(withResult));
  } catch (err) {
    const e =
      err instanceof CniError
        ? err
        : new CniError(
            CniCode.DelegateBadOutput,
            `delegate ADD result is not JSON: ${(err as Error).message}`,
          );
    return undo(e);
  }
  return renderResult(result, ctx.version);
}

const NETNS_REFUSED = {
  host: [
    "is this host's own network namespace",
    "give the container's network namespace; a container on the host network needs no CNI ADD",
  ],
  'not-netns': [
    'is not a network namespace',
    'give a network namespace path (a bind mount of /proc/<pid>/ns/net, e.g. /var/run/netns/<name>)',
  ],
} as const;

/**
 * State from an earlier ADD without a DEL. If that attachment is still live (its interface exists in
 * CNI_NETNS) and that ADD finished (the state has its result) this ADD is a duplicate: code 102; an
 * unfinished one is undone in the netns first. Otherwise it is stale — typically a reboot without DEL
 * (the netns is gone, the state and the IPAM reservation survived) — and would block the container for
 * ever: release it (delegate DEL without a netns, i.e. IPAM only), then continue.
 */
async function releaseStale(
  ctx: CmdContext,
  old: StoredAttachment,
  store: StateStore,
  deps: CniDeps,
): Promise<void> {
  const { env, conf } = ctx;
  let live = false;
  try {
    live = (await deps.inspect(env.netns, env.ifname)).link.exists;
  } catch (err) {
    if (!(err instanceof CniError && err.code === CniCode.UnknownContainer)) throw err;
  }
  // State without a result is an ADD that never finished (weftd killed while the delegate ran; the shim
  // then answered "try again later"): the runtime's retry must not get code 102. Undo that attachment
  // in the netns (the delegate's DEL removes the interface and the address), then add it again.
  const unfinished = old.result === undefined;
  if (live && !unfinished) {
    throw new CniError(
      CniCode.AlreadyAttached,
      `container ${env.containerId} is already attached to network ${conf.name} as ${env.ifname}`,
      'the runtime must DEL an attachment before adding it again',
    );
  }
  deps.log.warn(
    live
      ? 'ADD: undoing an earlier ADD of this attachment that never finished'
      : 'ADD: releasing stale state of an attachment that was never deleted',
    { containerID: env.containerId, ifname: env.ifname },
  );
  await invokeDelegateDel(old.delegate, old.result, env.path, live ? {} : { CNI_NETNS: '' }, deps);
  store.remove(conf.name, env.containerId, env.ifname);
}

/** podman rejects a result whose sandbox interface has no MAC: read it from the netns if the delegate omitted it. */
async function fillSandboxMac(ctx: CmdContext, result: Result, deps: CniDeps): Promise<void> {
  const sb = sandboxInterface(result, ctx.env.ifname);
  if (!sb || sb.iface.mac !== undefined) return;
  const snap = await deps.inspect(ctx.env.netns, ctx.env.ifname);
  if (snap.link.mac === undefined) {
    throw new CniError(CniCode.DelegateBadOutput, `interface ${ctx.env.ifname} has no MAC address`);
  }
  sb.iface.mac = snap.link.mac;
}

/**
 * Two delegate ADD failures told in weft's words (their own code is the Go library's catch-all 999):
 * host-local's "no IP addresses available in range set" becomes code 105 naming this host's subnet and
 * the ways out; the Go library refusing CNI_ARGS ("ARGS: …": unknown key without IgnoreUnknown, a value
 * that does not parse) becomes code 4 naming CNI_ARGS. Other errors pass through unchanged.
 */
function explainAddError(err: unknown, subnetEnv: SubnetEnv): unknown {
  if (!(err instanceof CniError)) return err;
  if (err.message.includes('no IP addresses available')) {
    const subnets = [subnetEnv.subnet, subnetEnv.ipv6Subnet]
      .filter((s) => s !== undefined)
      .map((s) => formatNetwork(s))
      .join(', ');
    return new CniError(
      CniCode.SubnetExhausted,
      `no free address left in this host's subnet ${subnets}`,
      'every address is reserved: DEL (or CNI GC) the containers that are gone to release theirs, ' +
        `or give hosts larger subnets (SubnetLen in the network config); ${err.message}`,
    );
  }
  if (err.message.includes('ARGS: ')) {
    return new CniError(
      CniCode.InvalidEnv,
      `CNI_ARGS refused by the delegate: ${err.message}`,
      'send IgnoreUnknown=1 with keys the delegate does not know, and values it can parse (IP=<address>)',
    );
  }
  return err;
}
