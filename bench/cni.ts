/**
 * `npm run bench:cni`: ADD+DEL latency of the `weft` CNI plugin (the installed one-file bundle, delegating
 * to the reference bridge + host-local in /usr/lib/cni) beside the reference bridge + host-local called
 * directly with the config weft would hand it (same subnet, MTU, ipMasq, cluster route), in the same run.
 *
 * Everything runs inside a test netns that plays the host; each ADD/DEL pair gets a fresh container
 * netns. The two plugins alternate (weft, reference, weft, …), BENCH_ITERATIONS (default 30) rounds each.
 * A call's time is the runtime's view: exec of `ip netns exec <host> env -i … <plugin>` until it exits.
 * Prints a Markdown table with p50/p99 and the goal: weft ADD+DEL ≤ 2.5 × the reference (p50).
 * Then the start-up floor: weft VERSION (Node's start + loading the bundle) against bridge VERSION,
 * and the ratio with that floor taken out of weft's two calls. Last, the Debian package: its size and
 * the packaged plugin's ADD/DEL beside the checkout's (bench/lib/cni-package.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../test/helpers/exec.js';
import { createNetns, deleteNetns, uniquePrefix } from '../test/helpers/netns.js';
import { bridgeConf, cniRounds, REPO, weftConf } from './lib/cni.js';
import { benchPackage } from './lib/cni-package.js';
import { quantile } from './lib/control.js';

const N = Number(process.env['BENCH_ITERATIONS'] ?? 30);
const GOAL_RATIO = 2.5;
const NETWORK = '10.198.0.0/16';
const SUBNET = '10.198.7.0/24';
const GATEWAY = '10.198.7.1';
const MTU = 1450;

const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;

async function main(): Promise<void> {
  if (!Number.isInteger(N) || N < 1) throw new Error('BENCH_ITERATIONS must be a positive integer');
  const tmp = mkdtempSync(join(tmpdir(), 'weft-bench-cni-'));
  const binDir = join(tmp, 'bin');
  // Build + install exactly like `npm run install:cni` (shebang pinned to this node).
  await run(process.execPath, [join(REPO, 'scripts', 'install-cni.mjs'), binDir], {
    timeoutMs: 120_000,
  });
  const subnetFile = join(tmp, 'subnet.env');
  // FLANNEL_IPMASQ=true: weft then asks bridge for ipMasq=false, like the reference config below.
  writeFileSync(
    subnetFile,
    `FLANNEL_NETWORK=${NETWORK}\nFLANNEL_SUBNET=${GATEWAY}/24\nFLANNEL_MTU=${MTU}\nFLANNEL_IPMASQ=true\n`,
  );
  const prefix = uniquePrefix();
  const hostNs = await createNetns(`${prefix}h`);
  try {
    await run('ip', ['-n', hostNs, 'link', 'set', 'lo', 'up']);
    const t = await cniRounds({
      hostNs,
      binDir,
      weftConf: weftConf(subnetFile, join(tmp, 'w'), 'wbench0'),
      // Same subnet on another bridge and IPAM dir: the two never share state.
      refConf: bridgeConf(SUBNET, MTU, join(tmp, 'r'), 'rbench0', [{ dst: NETWORK, gw: GATEWAY }]),
      n: N,
      nsPrefix: `${prefix}c`,
    });
    const sum = (a: number[], b: number[]): number[] => a.map((x, i) => x + (b[i] ?? NaN));
    const weft = sum(t.weftAdd, t.weftDel);
    const ref = sum(t.refAdd, t.refDel);
    const row = (name: string, add: number[], del: number[], both: number[]): string =>
      `| ${name} | ${fmt(quantile(add, 0.5))} | ${fmt(quantile(add, 0.99))} | ${fmt(quantile(del, 0.5))} | ${fmt(quantile(del, 0.99))} | ${fmt(quantile(both, 0.5))} | ${fmt(quantile(both, 0.99))} |`;
    const ratio50 = quantile(weft, 0.5) / quantile(ref, 0.5);
    const ratio99 = quantile(weft, 0.99) / quantile(ref, 0.99);
    console.log(`## CNI ADD+DEL latency (${N} iterations each, interleaved)\n`);
    console.log('| plugin | ADD p50 | ADD p99 | DEL p50 | DEL p99 | ADD+DEL p50 | ADD+DEL p99 |');
    console.log('|---|---|---|---|---|---|---|');
    console.log(row('weft → bridge + host-local', t.weftAdd, t.weftDel, weft));
    console.log(row('bridge + host-local (reference)', t.refAdd, t.refDel, ref));
    console.log('');
    console.log('| ratio weft / reference | p50 | p99 | goal | met |');
    console.log('|---|---|---|---|---|');
    console.log(
      `| ADD+DEL | ${ratio50.toFixed(2)} × | ${ratio99.toFixed(2)} × | weft ≤ ${GOAL_RATIO} × the reference (p50) | ${ratio50 <= GOAL_RATIO ? 'yes' : 'no'} |`,
    );
    // Node's own start is a floor a Node plugin cannot remove: VERSION (start, load the bundle, print)
    // against the Go bridge's VERSION, called the same way.
    const version = async (plugin: string): Promise<number> => {
      const t0 = performance.now();
      await run('ip', ['netns', 'exec', hostNs, 'env', '-i', 'CNI_COMMAND=VERSION', plugin], {
        input: '{"cniVersion":"1.0.0"}',
      });
      return performance.now() - t0;
    };
    const v = { weft: [] as number[], ref: [] as number[] };
    for (let i = 0; i < N; i++) {
      v.weft.push(await version(join(binDir, 'weft')));
      v.ref.push(await version('/usr/lib/cni/bridge'));
    }
    const startCost = quantile(v.weft, 0.5) - quantile(v.ref, 0.5);
    console.log('');
    console.log(
      `Start-up floor: weft VERSION p50 ${fmt(quantile(v.weft, 0.5))} vs bridge VERSION ${fmt(quantile(v.ref, 0.5))}: ` +
        `Node's start + loading the bundle costs ${fmt(startCost)} per call, ${fmt(2 * startCost)} per ADD+DEL; ` +
        `without it weft's ADD+DEL p50 would be ${((quantile(weft, 0.5) - 2 * startCost) / quantile(ref, 0.5)).toFixed(2)} × the reference.`,
    );
    await benchPackage({
      hostNs,
      checkoutBin: binDir,
      weftConf: weftConf(subnetFile, join(tmp, 'p'), 'pbench0'),
      n: N,
      nsPrefix: `${prefix}p`,
    });
  } finally {
    await deleteNetns(hostNs);
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
