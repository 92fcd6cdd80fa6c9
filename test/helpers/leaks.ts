/**
 * Leak check (issue 2): after each e2e/integration file, nothing this run created may be left: no
 * netns with this run's prefix, no tracked child process, no test link in the root namespace.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, expect } from 'vitest';
import { trackedChildren } from './exec.js';
import { liveNetns, listNetns, NETNS_PREFIX } from './netns.js';

export interface Leaks {
  netns: string[];
  processes: string[];
  rootLinks: string[];
}

export function findLeaks(): Leaks {
  const runId = process.env['WEFT_TEST_RUN_ID'] ?? String(process.pid);
  const mine = `${NETNS_PREFIX}${runId}-${process.pid.toString(36)}`;
  const netns = [...new Set([...liveNetns(), ...listNetns().filter((n) => n.startsWith(mine))])];
  const processes = trackedChildren().map((c) => `${c.pid ?? '?'} ${c.spawnargs.join(' ')}`);
  let rootLinks: string[] = [];
  try {
    rootLinks = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => (l.split(': ')[1] ?? '').split('@')[0] ?? '')
      .filter((n) => /^(weft|flannel|vh\d|veth\d+c)/.test(n));
  } catch {
    /* no iproute2: nothing to check */
  }
  return { netns, processes, rootLinks };
}

/** Registers an afterAll that fails the file if it leaked namespaces, processes or root links. */
export function useLeakCheck(): void {
  afterAll(() => {
    expect(findLeaks(), 'resources left behind by this test file').toEqual({
      netns: [],
      processes: [],
      rootLinks: [],
    });
  });
}
