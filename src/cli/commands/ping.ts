/**
 * `weftctl ping <overlay-ip> [--from-container=<netns>] [--count=N] [--interval=s]`: ICMP echo through
 * the overlay with loss and RTT (exit 0 with no loss, 1 with any loss), with iputils `ping` (weft has
 * no raw-socket package; ping is setuid-free with ping_group_range or runs as root), from this host or
 * from a container's network namespace (`ip netns exec <name>` for a name, `nsenter --net=<path>` for
 * a path). The output is parsed into loss and RTT (pure, unit-tested). doctor's underlay probes use it.
 */
import { execFile } from 'node:child_process';
import { WeftError } from '../../errors.js';
import { optionError } from '../../flags/go-flags.js';
import { ipFamily } from '../../ip/cidr.js';
import { EXIT } from '../exit-codes.js';
import { keyValues } from '../render.js';
import type { CommandContext, CommandOutput } from './context.js';

/** Parses iputils ping output (pure): the loss in percent, the RTT summary and each reply's RTT (ms,
 *  in order), and the ICMP errors ping reported (e.g. "Destination Host Unreachable"). */
export function parsePing(text: string, target: string, from: string | null) {
  const stats = /(\d+) packets transmitted, (\d+) received/.exec(text);
  const transmitted = Number(stats?.[1] ?? 0);
  const received = Number(stats?.[2] ?? 0);
  const rtt = /rtt min\/avg\/max\/mdev = ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(text);
  const replies = [...text.matchAll(/bytes from .*? time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const errors = [
    ...new Set(
      [...text.matchAll(/^From \S+ (?:icmp_seq=\d+ )?(.+)$/gm)].map((m) => (m[1] ?? '').trim()),
    ),
  ];
  return {
    target,
    from,
    transmitted,
    received,
    lossPercent:
      transmitted > 0 ? Math.round(((transmitted - received) / transmitted) * 1000) / 10 : 100,
    rttMs: rtt
      ? { min: Number(rtt[1]), avg: Number(rtt[2]), max: Number(rtt[3]), mdev: Number(rtt[4]) }
      : null,
    replies,
    errors,
  };
}

interface PingExtra {
  /** ICMP payload bytes (`-s`); the IPv4 packet is 28 bytes larger. */
  readonly size?: number;
  /** Set DF and never fragment (`-M do`): a probe of the path MTU. */
  readonly dontFragment?: boolean;
}

/** argv for ping from `netns` (a name under /run/netns or a path like /proc/<pid>/ns/net). */
export function pingArgv(
  target: string,
  count: number,
  intervalSec: number,
  netns: string | null,
  extra: PingExtra = {},
): string[] {
  const ping = ['ping', '-n', '-c', String(count), '-i', String(intervalSec), '-W', '1'];
  if (extra.size !== undefined) ping.push('-s', String(extra.size));
  if (extra.dontFragment) ping.push('-M', 'do');
  ping.push(target);
  if (netns === null) return ping;
  if (netns.includes('/')) return ['nsenter', `--net=${netns}`, '--', ...ping];
  return ['ip', 'netns', 'exec', netns, ...ping];
}

/** Runs ping (pingArgv's arguments) and parses it; rejects only when ping cannot run at all (not on
 *  packet loss). */
export function runPing(...ping: Parameters<typeof pingArgv>) {
  const [target, count, intervalSec, netns] = ping;
  const [cmd, ...args] = pingArgv(...ping);
  const timeout = Math.ceil(count * intervalSec * 1000 + 5000);
  return new Promise<ReturnType<typeof parsePing>>((resolve, reject) => {
    execFile(cmd ?? 'ping', args, { timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      // iputils: 0 = replies, 1 = no reply, 2 = other error (bad address, no such netns, …); nsenter
      // also exits 1 when it cannot enter the namespace: a 1 without ping's statistics is no loss
      if (code !== 0 && (code !== 1 || !/packets transmitted/.test(stdout))) {
        reject(
          new WeftError(
            'E_IO',
            `ping ${target}${netns ? ` from ${netns}` : ''} failed: ${(stderr || err?.message || '').trim().slice(0, 500)}`,
          ),
        );
        return;
      }
      resolve(parsePing(stdout, target, netns));
    });
  });
}

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
