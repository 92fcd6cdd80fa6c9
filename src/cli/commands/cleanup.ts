/**
 * `weftctl cleanup --flannel [--yes]`: flannel's leftovers on this host (src/migration/flannel-leftovers.ts;
 * docs/migration-from-flannel.md) — its devices, iptables chains and nftables tables. Without --yes it
 * shows what it would remove and the commands (exit 1 when there is something); with --yes it removes
 * them, in order, and checks again. Refuses while a flanneld process runs (it would put them back).
 * Leases in etcd and subnet.env are kept: weftd reuses the same subnet.
 */
import { optionError } from '../../flags/go-flags.js';
import { readFile, readdir } from 'node:fs/promises';
import {
  cleanupCommands,
  describeLeftovers,
  findFlannelLeftovers,
  hasLeftovers,
  runCommand,
} from '../../migration/flannel-leftovers.js';
import { EXIT } from '../exit-codes.js';
import type { CommandContext, CommandOutput } from './context.js';

/** PIDs of running flanneld processes (by /proc/<pid>/comm). */
async function flanneldPids(): Promise<number[]> {
  const pids: number[] = [];
  for (const d of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(d)) continue;
    const comm = await readFile(`/proc/${d}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === 'flanneld') pids.push(Number(d));
  }
  return pids;
}

export async function cleanupCommand(ctx: CommandContext): Promise<CommandOutput> {
  const { flannel, yes } = ctx.options;
  if (!flannel || ctx.options.args.length > 0) {
    throw optionError(
      'weftctl cleanup removes flannel leftovers only: run `weftctl cleanup --flannel` to see them, ' +
        'then `weftctl cleanup --flannel --yes` to remove them',
    );
  }
  ctx.progress("looking for flannel's devices, iptables chains and nftables tables");
  const found = await findFlannelLeftovers();
  const items = describeLeftovers(found);
  const cmds = cleanupCommands(found);
  const shown = cmds.map((c) => c.join(' '));
  if (!hasLeftovers(found)) {
    return {
      exitCode: EXIT.ok,
      json: { ok: true, found: [], removed: [] },
      human: 'no flannel leftovers on this host\n',
    };
  }
  if (!yes) {
    return {
      exitCode: EXIT.problem,
      json: { ok: false, found: items, commands: shown, removed: [] },
      human:
        "flannel's leftovers on this host:\n" +
        items.map((i) => `  ${i}\n`).join('') +
        'weftctl cleanup --flannel --yes runs:\n' +
        shown.map((c) => `  ${c}\n`).join('') +
        'leases in etcd and subnet.env are kept (weftd reuses the same subnet)\n',
    };
  }
  const pids = await flanneldPids();
  if (pids.length > 0) {
    return {
      exitCode: EXIT.problem,
      json: { ok: false, found: items, commands: shown, removed: [], flanneld: pids },
      human:
        `flanneld is running (pid ${pids.join(', ')}): it would put everything back. Stop it first: ` +
        'systemctl disable --now flanneld\n',
    };
  }
  const removed: string[] = [];
  const failed: { command: string; error: string }[] = [];
  for (const c of cmds) {
    ctx.progress(c.join(' '));
    const r = await runCommand(c[0]!, c.slice(1));
    if (r.code === 0) removed.push(c.join(' '));
    else failed.push({ command: c.join(' '), error: r.stderr.trim() || `exit ${r.code}` });
  }
  const left = describeLeftovers(await findFlannelLeftovers());
  const ok = failed.length === 0 && left.length === 0;
  return {
    exitCode: ok ? EXIT.ok : EXIT.failed,
    json: { ok, found: items, removed, failed, left },
    human:
      removed.map((c) => `removed: ${c}\n`).join('') +
      failed.map((f) => `FAILED: ${f.command}: ${f.error}\n`).join('') +
      (left.length ? `still there: ${left.join('; ')}\n` : "flannel's leftovers are gone\n") +
      (ok ? 'now start weftd: systemctl start weftd\n' : ''),
  };
}
