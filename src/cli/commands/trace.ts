/**
 * `weftctl trace <src-ip> <dst-ip>`: the packet path through the overlay (see ../trace.ts). Exit 1 when
 * this kernel would drop it; 0 when it forwards it correctly or is not on the path (`verdict: unknown`).
 */
import { optionError } from '../../flags/go-flags.js';
import { ipFamily } from '../../ip/cidr.js';
import { withRegistry } from '../etcd-view.js';
import { EXIT } from '../exit-codes.js';
import { gatherLocal, requireConfig } from '../gather.js';
import { paint, sanitize } from '../render.js';
import { traceOverlay } from '../trace.js';
import { readWgLiveFor } from '../wireguard-view.js';
import type { CommandContext, CommandOutput } from './context.js';

export async function traceCommand(ctx: CommandContext): Promise<CommandOutput> {
  const [src, dst] = ctx.options.args;
  if (
    !src ||
    !dst ||
    ipFamily(src) === null ||
    ipFamily(dst) === null ||
    ipFamily(src) !== ipFamily(dst)
  )
    throw optionError('trace: give two addresses of one family: weftctl trace <src-ip> <dst-ip>');
  return withRegistry(ctx.options, async (reg) => {
    const { view, host, own } = await gatherLocal(reg, ctx.options);
    const config = requireConfig(view);
    // the engine's peers are the claim order's incumbents, as in weftd (src/cli/peers.ts)
    const live = await readWgLiveFor(config, ctx.options);
    const t = traceOverlay({
      src,
      dst,
      config,
      ...(live?.ok ? { programmed: live.live.programmed } : {}),
      leases: view.leases,
      own: own?.lease ?? null,
      kernel: host?.kernel ?? null,
      addrs: host?.addrs ?? [],
    });
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
