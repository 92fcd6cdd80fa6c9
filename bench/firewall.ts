/**
 * What weft's firewall costs the dataplane: the peer allowlist (a set lookup per received UDP packet)
 * and the anti-spoofing forward rules (an interface-name set lookup per forwarded cluster packet),
 * measured as paired runs on ONE weft path. Each round measures the path with flannel's own rules (`--ip-masq` + forward
 * rules, written by hand here: the anchor) and with weft's ruleset, in alternating order, swapping the
 * tables in place (same weftd, devices, containers and iperf3 server); the ratio is weft ÷ flannel per
 * round, and the table shows the medians. On a busy machine only paired ratios mean something.
 *
 *   sudo npm run bench:firewall      (after `npm run build`; BENCH_ROUNDS, BENCH_SECONDS, BENCH_BACKENDS,
 *                                     BENCH_AMPLIFY, BENCH_AMPLIFY_PART)
 */
import { readFileSync } from 'node:fs';
import { nsRun } from '../test/helpers/exec.js';
import { startEtcd } from '../test/helpers/etcd.js';
import { createTopology, type SimHost } from '../test/helpers/netns.js';
import { SECONDS, rttUs, tcpGbit, udp64 } from './lib/measure.js';
import { WEFT_NETWORK, flannelRulesFor, subnetsOf, weft } from './lib/paths.js';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const BACKENDS = (process.env['BENCH_BACKENDS'] ?? 'vxlan,udp').split(',').filter(Boolean);
/**
 * BENCH_AMPLIFY=k adds k more copies of weft's per-packet lookups (the allowlist's two set lookups on
 * every received UDP packet, the uplink set lookup on every forwarded cluster packet) to the weft
 * side, as counting rules that never drop: a cost too small to see above the noise becomes k times
 * larger, and one copy costs about (1 − ratio) / k.
 */
const AMPLIFY = Number(process.env['BENCH_AMPLIFY'] ?? 0);
/** Which lookups BENCH_AMPLIFY multiplies: `input`, `forward` or both (default). */
const PART = process.env['BENCH_AMPLIFY_PART'] ?? 'both';

function amplifier(n: string, k: number): string {
  if (k <= 0) return '';
  const lines = [
    'table ip weft-amplify {',
    '  set ports { type inet_service; elements = { 8285, 8472 }; }',
    '  set peers { type ipv4_addr; elements = { 198.18.0.1, 198.18.0.2 }; }',
    '  set uplinks { type ifname; elements = { "eth0" }; }',
    '  chain input {',
    '    type filter hook input priority filter - 20; policy accept;',
  ];
  const ki = PART === 'forward' ? 0 : k;
  const kf = PART === 'input' ? 0 : k;
  for (let i = 0; i < ki; i++) lines.push('    udp dport @ports ip saddr != @peers counter');
  lines.push(
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter - 20; policy accept;',
  );
  for (let i = 0; i < kf; i++) lines.push(`    iifname @uplinks ip saddr ${n} counter`);
  lines.push('  }', '}', '');
  return lines.join('\n');
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Sample {
  tcp1: number;
  pps: number;
  rtt: number;
}

async function tables(ns: string): Promise<string> {
  return (await nsRun(ns, 'nft', ['list', 'tables'])).stdout;
}

async function main(): Promise<void> {
  const topo = await createTopology({ hosts: 2, ipv6: false });
  const out: string[] = [];
  try {
    const etcd = await startEtcd({ netns: topo.underlayNetns, host: topo.underlayGatewayIp });
    try {
      for (const backend of BACKENDS) {
        // a resync far beyond the run: weftd must not restore its table while flannel's is measured
        const p = await weft(topo, etcd, backend, ['--ip-masq', '--iptables-resync=3600']);
        try {
          const hosts: SimHost[] = topo.hosts.slice(0, 2);
          const saved = new Map<SimHost, string>();
          const flannel = new Map<SimHost, string>();
          for (const [k, h] of hosts.entries()) {
            saved.set(h, (await nsRun(h.netns, 'nft', ['list', 'table', 'ip', 'weft'])).stdout);
            const s = subnetsOf(p.daemons[k]!).subnet;
            flannel.set(h, flannelRulesFor(WEFT_NETWORK, s));
          }
          const use = async (which: 'flannel' | 'weft'): Promise<void> => {
            for (const h of hosts) {
              const script =
                which === 'flannel'
                  ? `table ip weft\ndelete table ip weft\ntable ip weft-amplify\ndelete table ip weft-amplify\n${flannel.get(h)!}`
                  : `table ip flannel-ipv4\ndelete table ip flannel-ipv4\n${saved.get(h)!}${amplifier(WEFT_NETWORK, AMPLIFY)}`;
              // `table X` + `delete table X`: replaces whatever is there (idempotent), one transaction
              await nsRun(h.netns, 'nft', ['-f', '-'], { input: script });
              const t = await tables(h.netns);
              if (t.includes('table ip weft') !== (which === 'weft'))
                throw new Error(`${h.netns}: tables after switching to ${which}: ${t}`);
            }
          };
          const measure = async (): Promise<Sample> => ({
            tcp1: (await tcpGbit(p.endpoints, 1)).gbit,
            pps: (await udp64(p.endpoints)).pps,
            rtt: await rttUs(p.endpoints, 50),
          });
          const res: Record<'flannel' | 'weft', Sample[]> = { flannel: [], weft: [] };
          await rttUs(p.endpoints, 5);
          for (let r = 0; r < ROUNDS; r++) {
            const order: ('flannel' | 'weft')[] = r % 2 ? ['weft', 'flannel'] : ['flannel', 'weft'];
            for (const which of order) {
              await use(which);
              res[which].push(await measure());
            }
            const f = res.flannel[r]!;
            const w = res.weft[r]!;
            process.stderr.write(
              `[bench:firewall] ${backend} round ${r + 1}/${ROUNDS}: flannel ${f.tcp1.toFixed(2)} Gbit/s ${(f.pps / 1000).toFixed(1)} kpps ${f.rtt} µs | weft ${w.tcp1.toFixed(2)} Gbit/s ${(w.pps / 1000).toFixed(1)} kpps ${w.rtt} µs\n`,
            );
          }
          await use('weft');
          // paired ratios (higher is better for weft; RTT: flannel ÷ weft)
          const ratio = (f: (s: Sample) => number, invert = false): number =>
            median(
              res.weft.map((w, i) => {
                const a = f(res.flannel[i]!);
                const b = f(w);
                return invert ? a / b : b / a;
              }),
            );
          const row = (name: string, f: (s: Sample) => number, unit: string, invert = false) =>
            `| weft ${backend} | ${name} | ${median(res.flannel.map(f)).toFixed(2)} ${unit} | ${median(res.weft.map(f)).toFixed(2)} ${unit} | ${ratio(f, invert).toFixed(2)} |`;
          out.push(
            row('TCP 1 stream', (s) => s.tcp1, 'Gbit/s'),
            row('UDP 64 B delivered', (s) => s.pps / 1000, 'kpps'),
            row('ping RTT', (s) => s.rtt, 'µs', true),
          );
        } finally {
          await p.teardown();
        }
      }
    } finally {
      await etcd.stop();
    }
  } finally {
    await topo.destroy();
  }
  const load = readFileSync('/proc/loadavg', 'utf8');
  console.log(
    [
      `### weft's firewall rules against flannel's (paired, ${ROUNDS} rounds, iperf3 ${SECONDS} s per figure${AMPLIFY > 0 ? `, weft's lookups × ${AMPLIFY + 1}` : ''})`,
      '',
      `Load at the end: ${load.trim()}. Ratio: median over rounds of weft ÷ flannel (RTT: flannel ÷ weft); 1.0 = no cost.`,
      '',
      '| path | measure | flannel rules | weft rules (allowlist + anti-spoofing) | paired ratio |',
      '|---|---|---|---|---|',
      ...out,
      '',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
