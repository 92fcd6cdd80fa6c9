/**
 * `weftctl ping <overlay-ip> [--from-container=<netns>] [--count=N] [--interval=s]`: ICMP echo through
 * the overlay with loss and RTT. Exit 0 with no loss, 1 with any loss.
 */
import { optionError } from '../../flags/go-flags.js';
import { ipFamily } from '../../ip/cidr.js';
import { EXIT } from '../exit-codes.js';
import { runPing } from '../ping.js';
import { keyValues } from '../render.js';
import type { CommandContext, CommandOutput } from './context.js';

export async function pingCommand(ctx: CommandContext): Promise<CommandOutput> {
  const target = ctx.options.args[0];
  if (!target || ipFamily(target) === null)
    throw optionError('ping: give an overlay address: weftctl ping <overlay-ip>');
  const o = ctx.options;
  if (o.count > 3) ctx.progress(`pinging ${target} ${o.count} times`);
  const r = await runPing(target, o.count, o.interval, o.fromContainer);
  const ok = r.transmitted > 0 && r.received === r.transmitted;
  const tone = r.lossPercent === 0 ? 'ok' : r.lossPercent === 100 ? 'bad' : 'warn';
  return {
    exitCode: ok ? EXIT.ok : EXIT.problem,
    json: { ok, ...r },
    human: keyValues(ctx.style, [
      ['target', `${target}${o.fromContainer ? ` from ${o.fromContainer}` : ' from this host'}`],
      ['packets', `${r.transmitted} sent, ${r.received} received`],
      ['loss', { text: `${r.lossPercent} %`, tone }],
      [
        'rtt',
        r.rttMs
          ? `min ${r.rttMs.min} / avg ${r.rttMs.avg} / max ${r.rttMs.max} / mdev ${r.rttMs.mdev} ms`
          : '-',
      ],
      ...(r.errors.length ? [['errors', r.errors.join('; ')] as [string, string]] : []),
    ]),
  };
}
