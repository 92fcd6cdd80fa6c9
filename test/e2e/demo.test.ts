/**
 * The README's first command is a test too (issue 8): `scripts/demo.sh up` builds 3 hosts, etcd, weftd
 * and 6 containers through the CNI plugin and prints an all-OK ping matrix; an interrupted run is cleared
 * by the next one; `down` leaves no namespace, process or state dir behind and the root namespace never
 * sees the demo's addresses. The test runs its own demo (`WEFT_DEMO_ID`), beside a user's if one runs;
 * installation is skipped (scripts/test.sh already installed and built everything).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, spawnTracked, stopChild, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps(
  'root',
  'netns',
  'etcd',
  'etcdctl',
  'ping',
  'nft',
  'cniPlugins',
  'iperf3',
);
useLeakCheck();

const REPO = resolve(import.meta.dirname, '../..');
const DEMO = join(REPO, 'scripts', 'demo.sh');
const ID = `t${process.pid}`;
const PREFIX = `weft-demo-${ID}`;
const STATE = `/run/${PREFIX}`;
const env = { ...process.env, WEFT_DEMO_SKIP_INSTALL: '1', WEFT_DEMO_ID: ID };

async function demoNetns(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${PREFIX}-`));
}

function recordedPids(): number[] {
  const dir = join(STATE, 'pids');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((f) => Number(readFileSync(join(dir, f), 'utf8').trim()));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Root-namespace config lines that mention the demo's underlay or names (must stay empty). */
async function rootMentions(): Promise<string[]> {
  const outs = await Promise.all([
    run('ip', ['-o', 'addr', 'show']),
    run('ip', ['route', 'show', 'table', 'all']),
    run('ip', ['-o', 'link', 'show']),
  ]);
  return outs
    .flatMap((r) => r.stdout.split('\n'))
    .filter((l) => /198\.18\.|10\.244\.|weft-demo/.test(l));
}

/** Demos of earlier test runs that were killed (their pid is gone): removed with their own `down`. */
async function sweepStaleTestDemos(): Promise<void> {
  const r = await run('ip', ['netns', 'list']);
  const ids = new Set(
    [...r.stdout.matchAll(/^weft-demo-t(\d+)-/gm)]
      .map((m) => Number(m[1]))
      .filter((p) => !alive(p)),
  );
  for (const pid of ids) {
    await run(DEMO, ['down'], { env: { ...env, WEFT_DEMO_ID: `t${pid}` }, timeoutMs: 60_000 });
  }
}

describe.skipIf(!runnable)('scripts/demo.sh (the README demo)', () => {
  beforeAll(sweepStaleTestDemos);
  afterAll(async () => {
    await run(DEMO, ['down'], { env, allowFail: true, timeoutMs: 60_000 });
  });

  it('an interrupted run leaves leftovers that the next run clears', async () => {
    const child = spawnTracked('bash', [DEMO, 'up'], { env });
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.resume();
    await waitFor('the demo to reach the weftd step', () => out.includes('[4/9]'), 60_000, 20);
    child.kill('SIGKILL');
    await stopChild(child);
    expect((await demoNetns()).length).toBeGreaterThan(0);
    expect(recordedPids().some(alive)).toBe(true);
  });

  it('up: builds the cluster and every container reaches every other one', async () => {
    const t0 = Date.now();
    const r = await run(DEMO, ['up'], { env, timeoutMs: 120_000, allowFail: true });
    const out = r.stdout + r.stderr;
    expect(r.code, out).toBe(0);
    expect(out).toContain('removed leftovers of an earlier run');
    expect(out).toMatch(/\[9\/9\] Measuring TCP throughput/);
    expect(out).toContain('connectivity: 30/30 pairs OK (all OK)');
    expect(out).not.toMatch(/\bFAIL\b/);
    // three leases, one per host, each on its host's underlay address
    for (const i of [1, 2, 3]) {
      expect(out).toMatch(
        new RegExp(`10\\.244\\.\\d+\\.0/24\\s+${PREFIX}-h${i}\\s+198\\.18\\.0\\.${i}\\s+vxlan`),
      );
    }
    expect(out).toMatch(/Throughput h1-c1 → h2-c1 \(vxlan.*\): \d+\.\d\d Gbit\/s/);
    // weftctl, preset for host 1 by the demo, reports a healthy weftd and the lease it holds
    expect(out).toContain(`weftctl status on ${PREFIX}-h1:`);
    expect(out).toMatch(/weftd:\s+healthy, ready/);
    expect(out).not.toContain('(weftctl exited');
    expect(Date.now() - t0).toBeLessThan(120_000);
    // the cluster keeps running: 1 underlay + 3 hosts + 6 containers, etcd and 3 weftd alive
    expect((await demoNetns()).length).toBe(10);
    const pids = recordedPids();
    expect(pids).toHaveLength(4);
    expect(pids.every(alive)).toBe(true);
    expect(await rootMentions()).toEqual([]);
  });

  it('down removes every namespace, process and the state dir', async () => {
    const pids = recordedPids();
    expect(pids.length).toBeGreaterThan(0);
    const r = await run(DEMO, ['down'], { env, timeoutMs: 60_000 });
    expect(r.stdout).toMatch(/removed 10 namespaces, stopped \d+ processes, deleted/);
    expect(await demoNetns()).toEqual([]);
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(STATE)).toBe(false);
    expect(await rootMentions()).toEqual([]);
    // a second down finds nothing and still succeeds
    const again = await run(DEMO, ['down'], { env, timeoutMs: 60_000 });
    expect(again.stdout).toContain('removed 0 namespaces, stopped 0 processes');
  });
});
