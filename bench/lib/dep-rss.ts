/**
 * What each dependency costs weftd's resident memory at start: each module imported alone in a fresh
 * `node --max-semi-space-size=2` (weftd's flags), resident memory read after a GC, minus a bare Node's;
 * the median of `runs`. Anonymous memory (V8 heap, malloc) is shown apart from the whole VmRSS, which
 * also counts the pages of the node binary that loading the module touched.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './cni.js';

const PROBE = `
const { readFileSync } = await import('node:fs');
for (const m of process.argv.slice(1)) await import(m);
globalThis.gc();
await new Promise((r) => setTimeout(r, 50));
globalThis.gc();
let anon = 0, name = '';
for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\\n')) {
  const m = /^[0-9a-f]+-[0-9a-f]+ \\S+ \\S+ \\S+ \\S+\\s*(.*)$/.exec(line);
  if (m) name = m[1];
  const r = /^Rss:\\s+(\\d+) kB/.exec(line);
  if (r && (name === '' || name === '[heap]')) anon += Number(r[1]);
}
const rss = Number(/^VmRSS:\\s+(\\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
console.log(JSON.stringify({ rss: rss / 1024, anon: anon / 1024 }));
`;

export interface DepCost {
  module: string;
  rssMiB: number;
  anonMiB: number;
}

function probe(modules: readonly string[]): { rss: number; anon: number } {
  const out = execFileSync(
    process.execPath,
    ['--max-semi-space-size=2', '--expose-gc', '--input-type=module', '-e', PROBE, ...modules],
    { cwd: REPO, encoding: 'utf8' },
  );
  return JSON.parse(out.trim().split('\n').pop()!) as { rss: number; anon: number };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** Cost over a bare Node of each entry (a package name or a path under the repo), median of `runs`. */
export function dependencyCosts(
  entries: readonly { label: string; modules: readonly string[] }[],
  runs = 3,
): { bare: { rssMiB: number; anonMiB: number }; costs: DepCost[] } {
  const sample = (mods: readonly string[]): { rss: number; anon: number } => {
    const r = Array.from({ length: runs }, () => probe(mods));
    return { rss: median(r.map((x) => x.rss)), anon: median(r.map((x) => x.anon)) };
  };
  const bare = sample([]);
  const costs = entries.map((e) => {
    const s = sample(e.modules.map((m) => (m.startsWith('dist/') ? join(REPO, m) : m)));
    return { module: e.label, rssMiB: s.rss - bare.rss, anonMiB: s.anon - bare.anon };
  });
  return { bare: { rssMiB: bare.rss, anonMiB: bare.anon }, costs };
}

/** The dependencies weftd loads, alone and as weft's own modules load them. */
export const WEFTD_DEPENDENCIES: readonly { label: string; modules: readonly string[] }[] = [
  {
    label: "weft's etcd client (dist/subnet/etcd: JSON gateway over node:http)",
    modules: ['dist/subnet/etcd/client.js'],
  },
  {
    label: "weft's Prometheus registry (dist/daemon/prom.js, replaced prom-client)",
    modules: ['dist/daemon/prom.js'],
  },
  {
    label: 'netlink (patched; native binding; the rtnetlink files src/netlink/package.ts loads)',
    modules: ['dist/netlink/package.js'],
  },
  {
    label: "netlink's whole index (nl80211, genl, wg too: not loaded by weftd)",
    modules: ['netlink'],
  },
  {
    label: 'weftd (dist/daemon/deps.js and run.js, metrics included)',
    modules: ['dist/daemon/deps.js', 'dist/daemon/run.js'],
  },
];
