/**
 * Runs once per vitest run, before the privileged tiers: removes namespaces left by earlier runs that
 * were killed (their creator pid is dead), and gives this run an id that test workers put in names.
 */
import { execFileSync } from 'node:child_process';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sweepStale(own?: string): string[] {
  const removed: string[] = [];
  let names: string[] = [];
  try {
    names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith('weft-t'));
  } catch {
    return removed;
  }
  for (const name of names) {
    const pid = Number(/^weft-t(\d+)-/.exec(name)?.[1]);
    const ours = own !== undefined && name.startsWith(`weft-t${own}-`);
    if (!ours && (!Number.isFinite(pid) || alive(pid))) continue;
    try {
      const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' })
        .split(/\s+/)
        .filter(Boolean);
      for (const p of pids) {
        try {
          process.kill(Number(p), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      execFileSync('ip', ['netns', 'delete', name], { stdio: 'ignore' });
      removed.push(name);
      console.warn(`removed stale test netns ${name}`);
    } catch {
      /* raced with another cleanup */
    }
  }
  return removed;
}

export default function setup(): () => void {
  const runId = (process.env['WEFT_TEST_RUN_ID'] ??= String(process.pid));
  sweepStale();
  return () => {
    const left = sweepStale(runId);
    if (left.length > 0) {
      throw new Error(`test run left network namespaces behind (now removed): ${left.join(', ')}`);
    }
  };
}
