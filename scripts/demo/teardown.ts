/**
 * `demo.sh down`, also run first by `up` to clear what an interrupted run left: stops the daemons the
 * demo recorded (by PID, only when the PID still runs a command line naming the demo's state dir), kills
 * whatever else still runs inside the demo's namespaces, deletes the namespaces (their veths, bridges,
 * VXLAN devices, routes and nft tables go with them) and removes the state dir. Never touches anything
 * that is not the demo's own; never throws for something already gone.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Layout } from './layout.js';
import { alive, isOurProcess, run, sleep } from './shell.js';

export interface TeardownReport {
  processes: number;
  namespaces: string[];
  stateDir: boolean;
}

/** PIDs recorded by `up` (`<pidDir>/<name>.pid`). */
export function recordedPids(l: Layout): { name: string; pid: number }[] {
  if (!existsSync(l.pidDir)) return [];
  return readdirSync(l.pidDir)
    .filter((f) => f.endsWith('.pid'))
    .map((f) => ({
      name: f.slice(0, -4),
      pid: Number(readFileSync(join(l.pidDir, f), 'utf8').trim()),
    }))
    .filter((p) => Number.isInteger(p.pid) && p.pid > 1);
}

export async function listDemoNetns(l: Layout): Promise<string[]> {
  const r = await run('ip', ['netns', 'list'], { allowFail: true });
  return r.stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((n) => l.ownsNetns(n));
}

async function stopPids(pids: number[], graceMs: number): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
  const deadline = Date.now() + graceMs;
  while (pids.some(alive) && Date.now() < deadline) await sleep(50);
  for (const pid of pids.filter(alive)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
}

export async function teardown(l: Layout): Promise<TeardownReport> {
  // 1. The daemons we started, gently (weftd and etcd stop cleanly on SIGTERM).
  const ours = recordedPids(l)
    .filter((p) => isOurProcess(p.pid, l.stateDir))
    .map((p) => p.pid);
  await stopPids(ours, 3000);
  // 2. Anything else still inside our namespaces (an iperf3 server, a shell a user left open).
  const namespaces = await listDemoNetns(l);
  const inside: number[] = [];
  for (const ns of namespaces) {
    const r = await run('ip', ['netns', 'pids', ns], { allowFail: true });
    for (const p of r.stdout.split(/\s+/).filter(Boolean)) inside.push(Number(p));
  }
  await stopPids(
    inside.filter((p) => Number.isInteger(p) && p > 1),
    1000,
  );
  // 3. Namespaces: containers first, then hosts, then the underlay.
  const order = (n: string): number => (/-c\d+$/.test(n) ? 0 : n.endsWith('-ul') ? 2 : 1);
  for (const ns of [...namespaces].sort((a, b) => order(a) - order(b))) {
    await run('ip', ['netns', 'delete', ns], { allowFail: true });
  }
  // 4. The state dir (logs, etcd data, subnet.env, CNI and IPAM state).
  const hadState = existsSync(l.stateDir);
  rmSync(l.stateDir, { recursive: true, force: true });
  return { processes: ours.length + inside.length, namespaces, stateDir: hadState };
}
