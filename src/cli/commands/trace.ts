/**
 * `weftctl trace <src-ip> <dst-ip>`: which host owns each address (from the leases), and — when this
 * host is on the path — the route, neighbour and FDB entries this kernel would use, the outer header
 * the packet gets, and what is missing if it would be dropped (traceOverlay, pure). The route lookup is
 * a longest-prefix match over the main table as read (policy rules and other tables are not modelled).
 * Exit 1 when this kernel would drop it; 0 when it forwards it correctly or is not on the path
 * (`verdict: unknown`).
 */
import type { PeerEntries } from '../../backend/peer-entries.js';
import { optionError } from '../../flags/go-flags.js';
import { canonicalCidr, cidrCovers, ipFamily } from '../../ip/index.js';
import type { Lease } from '../../lease/lease.js';
import { withRegistry } from '../etcd-view.js';
import { EXIT } from '../exit-codes.js';
import { gatherLocal, peerInputOf, requireConfig } from '../gather.js';
import {
  fdbFix,
  linkOf,
  lookupRoute,
  neighFix,
  routeVia,
  showRoute,
  type KernelState,
} from '../kernel-entries.js';
import { familyOf, planNetwork, planOfLease, type PeerInput } from '../peer-planner.js';
import { paint, sanitize } from '../render.js';
import type { CommandContext, CommandOutput } from './context.js';

export interface Endpoint {
  readonly ip: string;
  /** Lease key of the host whose subnet holds the address, or null (outside the overlay). */
  readonly lease: string | null;
  readonly subnet: string | null;
  /** The owning host's public IP (underlay address). */
  readonly host: string | null;
  /** True when the owning host is the one weftctl runs on. */
  readonly local: boolean;
}

interface TraceStep {
  readonly what: 'owner' | 'route' | 'neighbour' | 'fdb' | 'encap' | 'deliver' | 'note';
  readonly ok: boolean;
  readonly text: string;
}

interface OuterHeader {
  readonly src: string | null;
  readonly dst: string;
  readonly protocol: 'udp';
  readonly port: number;
  readonly vni: number;
  readonly innerDstMac: string;
}

export interface TraceResult {
  readonly src: Endpoint;
  readonly dst: Endpoint;
  /** 'ok' = this kernel delivers or forwards it correctly; 'dropped'; 'unknown' = not on this host's path. */
  readonly verdict: 'ok' | 'dropped' | 'unknown';
  readonly steps: readonly TraceStep[];
  readonly outer: OuterHeader | null;
  /** What is missing or wrong, each with the fix. */
  readonly missing: readonly string[];
}

/** What trace reads: the peer plan's input (PeerInput), the two addresses, and this host's kernel
 *  (null: not readable). */
interface TraceInput extends Omit<PeerInput, 'kernel'> {
  readonly src: string;
  readonly dst: string;
  readonly kernel: KernelState | null;
}

/** weftd's plan for `lease` and `ip`'s family on this host: the planned kernel entries (vxlan,
 *  host-gw; null for other backends) or why it refuses the lease. */
function planFor(
  i: TraceInput,
  k: KernelState,
  lease: Lease,
  ip: string,
): { entry: PeerEntries | null; refused: string | null } {
  const planned = planNetwork({ ...i, kernel: k, addrs: i.addrs ?? [] });
  const { entry, refusal } = planOfLease(planned, lease, familyOf(ip));
  return {
    entry: entry && 'route' in entry ? (entry as PeerEntries) : null,
    refused: refusal?.reason ?? null,
  };
}

/** The lease whose subnet holds `ip`: this host's own first, else the most specific (a hostile lease
 *  for a whole range must not hide the host that leases the /24 inside it, as the kernel's routes
 *  do not). */
function owner(ip: string, leases: readonly Lease[], own: Lease | null): Endpoint {
  const fam = familyOf(ip);
  const subnetOf = (l: Lease): string | null => (fam === 4 ? l.subnet : l.subnet6);
  const holders = leases.filter((l) => {
    const s = subnetOf(l);
    return s !== null && cidrCovers(s, ip);
  });
  const len = (l: Lease): number => Number(subnetOf(l)!.split('/')[1]);
  const l = holders.find((x) => x.key === own?.key) ?? holders.sort((a, b) => len(b) - len(a))[0];
  if (!l) return { ip, lease: null, subnet: null, host: null, local: false };
  const host = fam === 4 ? l.attrs.publicIp : (l.attrs.publicIpv6 ?? l.attrs.publicIp);
  return { ip, lease: l.key, subnet: canonicalCidr(subnetOf(l)!), host, local: own?.key === l.key };
}

function forward(
  i: TraceInput,
  k: KernelState,
  dstEp: Endpoint,
  dstLease: Lease | null,
): Omit<TraceResult, 'src' | 'dst'> {
  const steps: TraceStep[] = [];
  const missing: string[] = [];
  const { entry, refused } =
    dstLease && !dstEp.local ? planFor(i, k, dstLease, i.dst) : { entry: null, refused: null };
  /** This kernel drops the packet at a failed step; `problem` says what is missing, with the fix. */
  const drop = (what: TraceStep['what'], text: string, problem: string) => {
    steps.push({ what, ok: false, text });
    missing.push(problem);
    return { verdict: 'dropped' as const, steps, outer: null, missing };
  };
  /** The packet reaches the last hop: delivered, unless a wrong entry on the way is `missing`. */
  const deliver = (text: string, outer: OuterHeader | null): Omit<TraceResult, 'src' | 'dst'> => {
    steps.push({ what: 'deliver', ok: missing.length === 0, text });
    return { verdict: missing.length ? 'dropped' : 'ok', steps, outer, missing };
  };
  if (refused !== null) {
    // weftd programs nothing for this peer on purpose: never suggest entries that would undo that
    return drop(
      'note',
      `weftd refuses ${dstLease!.key}: ${refused}`,
      `weftd refuses the lease ${dstLease!.key} (${refused}): correct or remove that lease (weftctl peers)`,
    );
  }
  const route = lookupRoute(k.routes, i.dst);
  if (!route) {
    const fix = entry
      ? `${entry.route.dst} ${routeVia(entry, linkOf(k, entry.route.oif ?? null)?.name ?? '<device>')}`
      : `${dstEp.subnet ?? i.dst} …`;
    const problem = `no route to ${i.dst} on this host: ip route replace ${fix} (restart weftd)`;
    return drop('route', `no route to ${i.dst}`, problem);
  }
  const dev = linkOf(k, route.oif);
  steps.push({ what: 'route', ok: true, text: showRoute(k, route) });
  if (dev?.kind !== 'vxlan') {
    // a route via the peer's public IP (host-gw, VXLAN DirectRouting) as weftd plans it
    const wantGw = entry && !entry.neigh ? entry.route.gateway : null;
    // (udp, wireguard: the route into the TUN is right without a gateway, the engine picks the peer)
    if (wantGw && route.gateway === null)
      missing.push(
        `the route to ${dstEp.subnet} has no gateway: the peer's route is missing (ip route replace ${dstEp.subnet} via ${wantGw})`,
      );
    else if (wantGw && route.gateway !== wantGw)
      missing.push(
        `route goes via ${route.gateway}, the lease's public IP is ${wantGw}: ip route replace ${dstEp.subnet} via ${wantGw}`,
      );
    return deliver(
      route.gateway
        ? `routed natively to ${route.gateway} via ${dev?.name ?? '?'} (no encapsulation)`
        : `delivered on ${dev?.name ?? '?'}`,
      null,
    );
  }
  const gw = route.gateway ?? i.dst;
  const neigh = k.neighs.find((n) => n.ifindex === dev.index && n.dst === gw) ?? null;
  if (!neigh || !neigh.mac)
    return drop(
      'neighbour',
      `no neighbour entry for ${gw} on ${dev.name}`,
      `neighbour ${gw} on ${dev.name}: ${neighFix(gw, entry?.neigh?.mac ?? '<peer VtepMAC>', dev.name)}`,
    );
  steps.push({ what: 'neighbour', ok: true, text: `${gw} lladdr ${neigh.mac} dev ${dev.name}` });
  const fdb = k.fdb.find((f) => f.ifindex === dev.index && f.mac === neigh.mac) ?? null;
  if (!fdb || !fdb.dst)
    return drop(
      'fdb',
      `no FDB entry for ${neigh.mac} on ${dev.name}`,
      `FDB entry ${neigh.mac} on ${dev.name}: ${fdbFix(neigh.mac, dev.name, entry?.fdb?.dst ?? dstEp.host ?? '<peer public IP>')}`,
    );
  steps.push({ what: 'fdb', ok: true, text: `${fdb.mac} dst ${fdb.dst} dev ${dev.name}` });
  const outer: OuterHeader = {
    src: dev.vxlan?.local ?? null,
    dst: fdb.dst,
    protocol: 'udp',
    port: dev.vxlan?.port ?? 8472,
    vni: dev.vxlan?.vni ?? 0,
    innerDstMac: neigh.mac,
  };
  steps.push({
    what: 'encap',
    ok: true,
    text: `VXLAN ${outer.src ?? '?'} → ${outer.dst} udp/${outer.port} VNI ${outer.vni}`,
  });
  const want = entry?.neigh && entry.fdb ? { mac: entry.neigh.mac, dst: entry.fdb.dst } : null;
  if (dstLease && want && want.mac !== neigh.mac)
    missing.push(
      `the neighbour MAC ${neigh.mac} is not ${dstLease.key}'s VtepMAC ${want.mac}: the receiver drops the frame (${neighFix(gw, want.mac, dev.name)})`,
    );
  if (want && fdb.dst !== want.dst)
    missing.push(
      `the FDB sends to ${fdb.dst}, but ${dstEp.subnet} is leased by ${want.dst} (${fdbFix(neigh.mac, dev.name, want.dst)})`,
    );
  return deliver(`${dstEp.host ?? fdb.dst} decapsulates and routes to ${i.dst}`, outer);
}

export function traceOverlay(i: TraceInput): TraceResult {
  const src = owner(i.src, i.leases, i.own);
  const dst = owner(i.dst, i.leases, i.own);
  const dstLease = i.leases.find((l) => l.key === dst.lease) ?? null;
  const ownerStep = (ep: Endpoint, unleased: string): TraceStep => ({
    what: 'owner',
    ok: ep.lease !== null,
    text: ep.lease
      ? `${ep.ip} is in ${ep.subnet}, leased by ${ep.host}${ep.local ? ' (this host)' : ''}`
      : `${ep.ip} is in no lease's subnet${unleased}`,
  });
  const ownerSteps = [
    ownerStep(src, ''),
    ownerStep(dst, ' (outside the overlay or no host holds it)'),
  ];
  /** A result this kernel's tables do not decide (no outer header). */
  const done = (
    verdict: TraceResult['verdict'],
    step: TraceStep | null,
    missing: string[] = [],
  ) => ({
    src,
    dst,
    verdict,
    steps: step ? [...ownerSteps, step] : ownerSteps,
    outer: null,
    missing,
  });
  const nets = [i.config.network, i.config.ipv6Network].filter((n): n is string => !!n);
  if (!dst.lease && nets.some((n) => cidrCovers(n, i.dst)))
    return done('dropped', null, [
      `no host leases the subnet of ${i.dst}: check \`weftctl leases\``,
    ]);
  if (src.lease && src.lease === dst.lease) {
    const text = 'same host: delivered on the local bridge, the overlay is not used';
    return done(src.local ? 'ok' : 'unknown', { what: 'deliver', ok: true, text });
  }
  if (i.kernel && (src.local || !src.lease)) {
    const r = forward(i, i.kernel, dst, dstLease);
    return { src, dst, ...r, steps: [...ownerSteps, ...r.steps] };
  }
  if (i.kernel && dst.local && src.lease) {
    // This host receives: the request is decapsulated here; what this kernel decides is the reply.
    const srcLease = i.leases.find((l) => l.key === src.lease) ?? null;
    const r = forward({ ...i, src: i.dst, dst: i.src }, i.kernel, src, srcLease);
    const here: TraceStep = {
      what: 'deliver',
      ok: true,
      text: `${i.dst} is on this host: decapsulated and delivered locally; checking the reply path`,
    };
    return {
      src,
      dst,
      verdict: r.verdict,
      steps: [...ownerSteps, here, ...r.steps.map((st) => ({ ...st, text: `reply: ${st.text}` }))],
      outer: r.outer,
      missing: r.missing.map((m) => `reply path: ${m}`),
    };
  }
  return done('unknown', {
    what: 'note',
    ok: true,
    text: src.host
      ? `this host is not ${i.src}'s host: run \`weftctl trace ${i.src} ${i.dst}\` on ${src.host} to see its kernel`
      : 'this host is not on the path',
  });
}

export async function traceCommand(ctx: CommandContext): Promise<CommandOutput> {
  const [src, dst] = ctx.options.args;
  const family = src ? ipFamily(src) : null;
  if (family === null || !dst || ipFamily(dst) !== family)
    throw optionError('trace: give two addresses of one family: weftctl trace <src-ip> <dst-ip>');
  return withRegistry(ctx.options, async (reg) => {
    const local = await gatherLocal(reg, ctx.options);
    const t = traceOverlay({ src, dst, ...peerInputOf(local, requireConfig(local.view)) });
    const s = ctx.style;
    let human = `trace ${src} → ${dst}\n`;
    for (const step of t.steps)
      human += `  ${paint(s, step.ok ? 'ok' : 'bad', step.ok ? '✓' : '✗')} ${step.what.padEnd(9)} ${sanitize(step.text)}\n`;
    if (t.outer)
      human += `  outer header: ${t.outer.src ?? '?'} → ${t.outer.dst}, UDP dst port ${t.outer.port}, VNI ${t.outer.vni}, inner dst MAC ${t.outer.innerDstMac}\n`;
    human += `verdict: ${paint(s, t.verdict === 'ok' ? 'ok' : t.verdict === 'dropped' ? 'bad' : 'warn', t.verdict)}\n`;
    for (const m of t.missing) human += `  missing: ${sanitize(m)}\n`;
    return {
      exitCode: t.verdict === 'dropped' ? EXIT.problem : EXIT.ok,
      json: { ok: t.verdict !== 'dropped', ...t },
      human,
    };
  });
}
