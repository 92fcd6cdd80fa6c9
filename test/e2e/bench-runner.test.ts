/**
 * `npm run bench` end to end, cut short (one round, 1 s per figure, three paths): the runner builds the
 * topology, measures the underlay, the hand-built kernel VXLAN and weft VXLAN (real weftd, containers
 * through the CNI plugin), prints real numbers for them and "n/a (reason)" for every row it did not
 * measure, writes Markdown, JSON with the machine's facts and an SVG, and leaves nothing behind.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/exec.js';
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

describe.skipIf(!runnable)('npm run bench (short)', () => {
  const out = mkdtempSync(join(tmpdir(), 'weft-bench-test-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('measures the selected rows beside their anchors and writes md, json and svg', async () => {
    const r = await run(process.execPath, ['--import', 'tsx', join(REPO, 'bench', 'run.ts')], {
      env: {
        ...process.env,
        BENCH_ONLY: 'underlay,vxlan-hand,weft-vxlan',
        BENCH_ROUNDS: '1',
        BENCH_SECONDS: '1',
        BENCH_RESULTS_DIR: out,
        // the runner's namespaces get names of their own, so the check below sees only them
        WEFT_TEST_RUN_ID: `b${process.pid}`,
      },
      timeoutMs: 170_000,
      allowFail: true,
    });
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const md = r.stdout;
    const line = (start: string): string => md.split('\n').find((l) => l.startsWith(start)) ?? '';
    // measured rows carry numbers; weft VXLAN is divided by the hand-built VXLAN of this same run
    expect(line('| underlay')).toMatch(/\| \d+\.\d\d Gbit\/s \| \d+\.\d\d Gbit\/s \| \d+k pps/);
    expect(line('| kernel VXLAN by hand')).toMatch(/× underlay .*: \d+\.\d\d \/ /);
    expect(line('| weft VXLAN')).toMatch(/× kernel VXLAN by hand \(iproute2\): \d+\.\d\d \//);
    // rows not measured say why, and hold no number
    expect(line('| weft host-gw')).toBe(
      '| weft host-gw | n/a (not selected (BENCH_ONLY)) | | | | | |',
    );
    expect(line('| weft UDP')).toMatch(/^\| weft UDP \| n\/a \(/);
    expect(md).toContain('| peer programming (bench/netlink.ts) | n/a (not run) | | |');
    // files: Markdown, JSON with the machine's facts, SVG
    const files = readdirSync(out);
    const json = files.find((f) => /^\d{4}-.*\.json$/.test(f));
    expect(json).toBeDefined();
    expect(files).toEqual(expect.arrayContaining(['latest.md', 'latest.json', 'latest.svg']));
    const report = JSON.parse(readFileSync(join(out, json!), 'utf8')) as {
      machine: { kernel: string; cpu: string; cores: number; node: string };
      dataplane: { id: string; result?: { tcp1: number } }[];
    };
    expect(report.machine.kernel).toMatch(/^\d+\.\d+/);
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.machine.node).toBe(process.version);
    const weftVxlan = report.dataplane.find((d) => d.id === 'weft-vxlan');
    expect(weftVxlan?.result?.tcp1).toBeGreaterThan(0);
    const svg = readFileSync(join(out, 'latest.svg'), 'utf8');
    expect(svg).toMatch(/^<svg xmlns/);
    expect(svg).toContain('weft VXLAN ÷ kernel VXLAN by hand');
    expect(existsSync(join(out, json!.replace(/json$/, 'md')))).toBe(true);
    // the runner removed its namespaces
    const left = (await run('ip', ['netns', 'list'])).stdout
      .split('\n')
      .filter((l) => l.startsWith(`weft-tb${process.pid}-`));
    expect(left).toEqual([]);
  });
});
