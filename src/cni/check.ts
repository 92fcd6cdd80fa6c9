/**
 * CHECK (docs/cni-contract.md A4): really looks inside the container's netns. The interface must exist with
 * the MAC from the ADD result, carry every address, and the netns must hold every route (dst and gw);
 * every address must still lie inside this host's current subnet (a new lease makes old pods stale).
 * Then the delegate's own CHECK runs with the stored result as `prevResult`.
 */
import { formatNetwork, parseHostCidr, parseIP, formatIP, cidrContains } from '../ip/host-cidr.js';
import type { CmdContext, CniDeps } from './deps.js';
import { CniCode, CniError } from './errors.js';
import { findPlugin } from './invoke.js';
import { loadSubnetEnv } from './load-subnet.js';
import type { JsonObject } from './netconf.js';
import { parseResult, renderResult, sandboxInterface, type Result } from './result.js';
import type { NetnsSnapshot } from './inspect.js';
import { StateStore } from './state.js';
import { isSupportedVersion } from './versions.js';

const canonIP = (s: string): string => {
  const ip = parseIP(s);
  return ip ? formatIP(ip.family, ip.addr) : s;
};
const canonCidr = (s: string): string => {
  const c = parseHostCidr(s);
  return c ? `${formatIP(c.family, c.addr)}/${c.prefix}` : s;
};
const canonNet = (s: string): string => {
  const c = parseHostCidr(s);
  return c ? formatNetwork(c) : s;
};

/** Every difference between the ADD result and the netns, as human-readable problems. */
export function compareWithNetns(result: Result, ifname: string, snap: NetnsSnapshot): string[] {
  const problems: string[] = [];
  if (!snap.link.exists) return [`interface ${ifname} does not exist`];
  const sb = sandboxInterface(result, ifname);
  if (sb?.iface.mac !== undefined && snap.link.mac?.toLowerCase() !== sb.iface.mac.toLowerCase()) {
    problems.push(
      `interface ${ifname} has MAC ${snap.link.mac ?? 'none'}, expected ${sb.iface.mac}`,
    );
  }
  const have = new Set(snap.link.addresses.map(canonCidr));
  for (const ip of result.ips) {
    if (ip.interface !== undefined && ip.interface !== sb?.index) continue;
    if (!have.has(canonCidr(ip.address)))
      problems.push(`address ${ip.address} is missing on ${ifname}`);
  }
  for (const r of result.routes) {
    const dst = canonNet(r.dst);
    const found = snap.routes.some(
      (x) =>
        canonNet(x.dst) === dst &&
        (r.gw === undefined || (x.gw !== undefined && canonIP(x.gw) === canonIP(r.gw))),
    );
    if (!found) problems.push(`route ${r.dst}${r.gw ? ` via ${r.gw}` : ''} is missing`);
  }
  return problems;
}

/**
 * A later plugin in the chain (e.g. `tuning`) may change the interface's MAC; the spec asks CHECK to
 * tolerate that, so the MAC in the runtime's `prevResult` (the chain's final result) wins when present.
 */
function adoptLaterMac(result: Result, prevResult: JsonObject | undefined, ifname: string): void {
  const mine = sandboxInterface(result, ifname);
  if (!mine || !prevResult) return;
  try {
    const mac = sandboxInterface(parseResult(prevResult), ifname)?.iface.mac;
    if (mac !== undefined) mine.iface.mac = mac;
  } catch {
    /* an unusable prevResult changes nothing */
  }
}

export async function cmdCheck(ctx: CmdContext, deps: CniDeps): Promise<void> {
  const { env, conf } = ctx;
  const store = new StateStore(conf.dataDir);
  const read = store.read(conf.name, env.containerId, env.ifname);
  if (read.kind !== 'ok' || read.state.result === undefined) {
    throw new CniError(
      CniCode.UnknownContainer,
      `no ADD result stored for container ${env.containerId} (${env.ifname}) on network ${conf.name}`,
      read.kind === 'corrupt' ? read.reason : undefined,
    );
  }
  const result = parseResult(read.state.result);
  adoptLaterMac(result, conf.prevResult, env.ifname);
  const problems = compareWithNetns(result, env.ifname, await deps.inspect(env.netns, env.ifname));

  let subnetEnv;
  try {
    subnetEnv = loadSubnetEnv(conf.subnetFile, deps);
  } catch (err) {
    deps.log.warn('CHECK: subnet.env unavailable, not comparing addresses with the lease', {
      error: (err as Error).message,
    });
  }
  if (subnetEnv) {
    for (const ip of result.ips) {
      const c = parseHostCidr(ip.address)!;
      const subnet = c.family === 4 ? subnetEnv.subnet : subnetEnv.ipv6Subnet;
      if (subnet && !cidrContains(subnet, { ...c, prefix: subnet.prefix, network: c.addr })) {
        problems.push(
          `address ${ip.address} is outside this host's subnet ${formatNetwork(subnet)}`,
        );
      }
    }
  }
  if (problems.length > 0) {
    throw new CniError(
      CniCode.CheckFailed,
      `CHECK failed for ${env.containerId}: ${problems.join('; ')}`,
    );
  }

  const delegate: JsonObject = read.state.delegate;
  const dv = delegate['cniVersion'];
  if (!isSupportedVersion(dv) || dv === '0.3.0' || dv === '0.3.1') return;
  const plugin = findPlugin(String(delegate['type']), env.path);
  const stdin = JSON.stringify({ ...delegate, prevResult: renderResult(result, dv) });
  await deps.invoke({ plugin, command: 'CHECK', env: {}, stdin });
}
