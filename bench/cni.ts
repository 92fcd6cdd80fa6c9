/**
 * `npm run bench:cni`: CNI ADD and DEL latency of the installed `weft` plugin (`npm run install:cni`: the
 * C shim, which hands each call to the running weftd; weftd runs the plugin in-process and has the shim
 * run the reference bridge + host-local in /usr/lib/cni) beside the reference bridge + host-local called directly
 * with the config weft would hand it (same subnet, MTU, ipMasq, cluster route), in the same run.
 *
 * Everything runs inside a test netns that plays the host, where a real weftd serves the CNI socket (its
 * etcd endpoint is closed on purpose: it serves CNI while it waits for its config, which keeps the netns'
 * dataplane untouched). Each ADD/DEL pair gets a fresh container netns. The plugins alternate (weft,
 * reference, weft, …), BENCH_ITERATIONS (default 30) rounds each. A call's time is the runtime's view:
 * exec of `ip netns exec <host> env -i … <plugin>` until it exits. Goal: ADD and DEL p50 each ≤ 1.2 × the
 * reference. Then, with weftd stopped, the fallback path: DEL through the shim (which then runs the full
 * plugin, `weft-full`), and the standalone full plugin's ADD, against the same reference.
 * Last, the Debian package: its size and the packaged plugin's ADD/DEL beside the checkout's
 * (bench/lib/cni-package.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../test/helpers/exec.js';
import { createNetns, deleteNetns, uniquePrefix } from '../test/helpers/netns.js';
import { startCniWeftd, type CniWeftd } from '../test/integration/cni/cni-helpers.js';
import { bridgeConf, cniRounds, REPO, weftConf, type CniSamples } from './lib/cni.js';
import { benchPackage } from './lib/cni-package.js';
import { quantile } from './lib/control.js';

const N = Number(process.env['BENCH_ITERATIONS'] ?? 30);
const GOAL_RATIO = 1.2;
const NETWORK = '10.198.0.0/16';
const SUBNET = '10.198.7.0/24';
const GATEWAY = '10.198.7.1';
const MTU = 1450;

const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;
const p50 = (a: number[]): number => quantile(a, 0.5);
const p99 = (a: number[]): number => quantile(a, 0.99);

async function main(): Promise<void> {
  if (!Number.isInteger(N) || N < 1) throw new Error('BENCH_ITERATIONS must be a positive integer');
  const tmp = mkdtempSync(join(tmpdir(), 'weft-bench-cni-'));
  const binDir = join(tmp, 'bin');
  // Build + install exactly like `npm run install:cni` (shim as `weft`, the full plugin as `weft-full`).
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
  let weftd: CniWeftd | undefined;
  try {
    weftd = await startCniWeftd(hostNs, tmp);
    const conf = weftConf(subnetFile, join(tmp, 'w'), 'wbench0', weftd.socket);
    // Same subnet on another bridge and IPAM dir: the two never share state.
    const refConf = bridgeConf(SUBNET, MTU, join(tmp, 'r'), 'rbench0', [
      { dst: NETWORK, gw: GATEWAY },
    ]);
    const fast = await cniRounds({
      hostNs,
      binDir,
      weftConf: conf,
      refConf,
      n: N,
      nsPrefix: `${prefix}c`,
    });
    const socket = weftd.socket;
    const version = async (plugin: string): Promise<number> => {
      const t0 = performance.now();
      await run('ip', ['netns', 'exec', hostNs, 'env', '-i', 'CNI_COMMAND=VERSION', plugin], {
        input: JSON.stringify({ cniVersion: '1.0.0', daemonSocket: socket }),
      });
      return performance.now() - t0;
    };
    const v = { weft: [] as number[], ref: [] as number[], full: [] as number[] };
    for (let i = 0; i < N; i++) {
      v.weft.push(await version(join(binDir, 'weft')));
      v.ref.push(await version('/usr/lib/cni/bridge'));
    }

    // weftd stopped: the fallback path.
    await weftd.stop();
    weftd = undefined;
    const fb = await cniRounds({
      hostNs,
      binDir,
      weftConf: conf,
      refConf,
      n: Math.max(1, Math.ceil(N / 2)),
      nsPrefix: `${prefix}f`,
      weftAddPlugin: join(binDir, 'weft-full'),
      weftDelPlugin: join(binDir, 'weft'),
    });
    for (let i = 0; i < N; i++) v.full.push(await version(join(binDir, 'weft')));

    const row = (name: string, add: number[], del: number[]): string =>
      `| ${name} | ${fmt(p50(add))} | ${fmt(p99(add))} | ${fmt(p50(del))} | ${fmt(p99(del))} |`;
    const ratio = (a: number[], b: number[]): string => (p50(a) / p50(b)).toFixed(2);
    const met = (a: number[], b: number[]): string =>
      p50(a) / p50(b) <= GOAL_RATIO ? 'yes' : 'no';
    console.log(`## CNI ADD and DEL latency (${N} iterations each, interleaved)\n`);
    console.log('| plugin | ADD p50 | ADD p99 | DEL p50 | DEL p99 |');
    console.log('|---|---|---|---|---|');
    console.log(row('weft (shim → weftd → bridge + host-local)', fast.weftAdd, fast.weftDel));
    console.log(row('bridge + host-local (reference, same run)', fast.refAdd, fast.refDel));
    console.log('');
    console.log('| ratio weft / reference (p50) | ADD | DEL | goal | met |');
    console.log('|---|---|---|---|---|');
    console.log(
      `| weft via weftd | ${ratio(fast.weftAdd, fast.refAdd)} × | ${ratio(fast.weftDel, fast.refDel)} × | each ≤ ${GOAL_RATIO} × | ADD ${met(fast.weftAdd, fast.refAdd)}, DEL ${met(fast.weftDel, fast.refDel)} |`,
    );
    console.log('');
    printFallback(fb);
    console.log('');
    console.log(
      `VERSION p50: weft shim via weftd ${fmt(p50(v.weft))}, weftd stopped (shim → weft-full) ${fmt(p50(v.full))}, ` +
        `bridge ${fmt(p50(v.ref))} (all through \`ip netns exec\`).`,
    );
    await benchPackage({
      hostNs,
      checkoutBin: binDir,
      weftConf: weftConf(subnetFile, join(tmp, 'p'), 'pbench0'),
      n: N,
      nsPrefix: `${prefix}p`,
    });
  } finally {
    await weftd?.stop();
    await deleteNetns(hostNs);
    rmSync(tmp, { recursive: true, force: true });
  }
}

function printFallback(fb: CniSamples): void {
  console.log(`### weftd stopped: the fallback path (${fb.weftAdd.length} iterations)\n`);
  console.log('| call | weft p50 | reference p50 | ratio |');
  console.log('|---|---|---|---|');
  console.log(
    `| DEL through the shim (runs weft-full) | ${fmt(p50(fb.weftDel))} | ${fmt(p50(fb.refDel))} | ${(p50(fb.weftDel) / p50(fb.refDel)).toFixed(2)} × |`,
  );
  console.log(
    `| ADD by weft-full standalone (the shim itself answers code 11 without weftd) | ${fmt(p50(fb.weftAdd))} | ${fmt(p50(fb.refAdd))} | ${(p50(fb.weftAdd) / p50(fb.refAdd)).toFixed(2)} × |`,
  );
}

await main();
