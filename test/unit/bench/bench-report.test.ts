/**
 * The bench runner's pure parts: reading the per-area benches' tables, the ratios, the Markdown (a
 * missing part is "n/a (reason)", never a number) and the SVG chart.
 */
import { describe, expect, it } from 'vitest';
import {
  parseForwarderOutput,
  parseLeaseOutput,
  parseNetlinkOutput,
} from '../../../bench/lib/area-output.js';
import type { PathResult } from '../../../bench/lib/measure.js';
import {
  buildRatios,
  toMarkdown,
  toSvg,
  type BenchReport,
  type Control,
  type DataplaneRow,
} from '../../../bench/lib/report.js';
import { lineChart, ratioChart } from '../../../bench/lib/svg.js';

const UDP_OUT = `
# bench:udp 2026-11-25T11:06:42.143Z (1 s × 1, median; client h1, server h2)

| path | TCP 1 stream Gbit/s | reverse | TCP 4 streams | UDP 64 B kpps delivered | ping RTT µs | × kernel VXLAN (1 stream fwd / rev) | × no-offload forwarder | vCPU·s per Gbit |
|---|---|---|---|---|---|---|---|---|
| underlay (veth, host to host) | 8.78 | 9.42 | 6.93 | 46 | 58 | 2.92 / 1.22 | 26.0 / 12.2 | – |
| kernel VXLAN by hand (flannel layout) | 3.01 | 7.74 | 6.49 | 34 | 88 | 1.00 / 1.00 | 8.9 / 10.0 | – |
| weft UDP forwarder (TSO + GSO/GRO) | 3.06 | 3.72 | 1.71 | 8 | 2039 | 1.02 / 0.48 | 9.1 / 4.8 | 0.157 |
| weft UDP forwarder, no offloads | 0.34 | 0.77 | 0.26 | 31 | 150 | 0.11 / 0.10 | 1.0 / 1.0 | 1.200 |

fallbacks per forwarder: none | none
`;

const NETLINK_OUT = `
### netlink: peer programming against the kernel's floor (median of 1; kernel 6.18; load average 1.0 at start, 1.2 at end)

| peers | kernel entries | floor: C batched rtnetlink ms | \`ip -batch\` + \`bridge -batch\` ms | weft full reconcile ms | weft ÷ floor | weft CPU ms | goal ≤ 1.15 × floor |
|---|---|---|---|---|---|---|---|
| 1000 | 3000 | 21.0 | 60.5 | 30.1 | 1.43 | 40 | NOT met |
| 5000 | 15000 | 400.0 | 560.0 | 440.0 | 1.10 | 200 | met |

Floor: the faster of …

| peers | incremental add of 1 peer: ms | its netlink requests | its dumps | incremental remove of 1 peer: ms | its netlink requests | its dumps | floor for 1 peer add / remove (C, 3 messages) |
|---|---|---|---|---|---|---|---|
| 1000 | 0.52 | 3 | 0 | 0.61 | 3 | 0 | 60 µs / 40 µs |
`;

const LEASE_OUT = `
| run | time to all acquired | succeeded | distinct subnets | etcd requests / acquisition | lost races (retries) | max attempts by one host | goal |
|---|---|---|---|---|---|---|---|
| 1 | 1.95 s | 200/200 | 200 | 2.10 | 12 | 3 | all succeed within 5 s: met |
`;

const result = (tcp1: number, rttUs = 100, lossAtAnchor = NaN): PathResult => ({
  tcp1,
  tcp4: tcp1 * 1.5,
  pps: tcp1 * 10_000,
  udpLoss: 0.1,
  offeredPps: tcp1 * 11_000,
  lossAtAnchor,
  rttUs,
  cpuPerGbit: 0.2,
});

function report(dataplane: DataplaneRow[], control: Partial<Control> = {}): BenchReport {
  const c: Control = {
    lease: { na: 'not run' },
    netlink: { na: 'not run' },
    etcdToKernel: { na: 'not run' },
    rss: { na: 'not run' },
    cni: { na: 'not run' },
    forwarder: { na: 'not run' },
    ...control,
  };
  return {
    date: '2026-11-25T11:00:00.000Z',
    seconds: 2,
    rounds: 3,
    machine: {
      kernel: '6.18',
      cpu: 'test cpu',
      cores: 2,
      node: 'v20',
      iperf3: 'iperf 3.12',
      etcd: 'etcd 3.4',
      loadavg1m: 1,
    },
    dataplane,
    control: c,
    ratios: buildRatios(dataplane, c),
  };
}

describe('per-area bench output', () => {
  it('reads bench/udp.ts rows by header, whatever columns it has', () => {
    const rows = parseForwarderOutput(UDP_OUT);
    expect(rows).toHaveLength(4);
    expect(rows[3]).toEqual({
      path: 'weft UDP forwarder, no offloads',
      fwd: 0.34,
      rev: 0.77,
      tcp4: 0.26,
      kpps: 31,
      rttUs: 150,
      xVxlan: 0.11,
      xPerPacket: NaN, // this sample has no per-packet column
      cpuPerGbit: 1.2,
    });
    expect(rows[0]?.cpuPerGbit).toBeNull();
    // an older layout without the 4-stream and pps columns still reads, those as NaN
    const old = [
      '| path | TCP 1 stream Gbit/s | reverse | ping RTT µs | × kernel VXLAN (1 stream fwd / rev) | × no-offload forwarder | vCPU·s per Gbit |',
      '|---|---|---|---|---|---|---|',
      '| underlay (veth, host to host) | 8.78 | 9.42 | 58 | 2.92 / 1.22 | 26.0 / 12.2 | – |',
      '| kernel VXLAN by hand (flannel layout) | 3.01 | 7.74 | 88 | 1.00 / 1.00 | 8.9 / 10.0 | – |',
      '| weft UDP forwarder (TSO + GSO/GRO) | 3.06 | 3.72 | 2039 | 1.02 / 0.48 | 9.1 / 4.8 | 0.157 |',
      '| weft UDP forwarder, no offloads | 0.34 | 0.77 | 150 | 0.11 / 0.10 | 1.0 / 1.0 | 1.200 |',
    ].join('\n');
    const oldRows = parseForwarderOutput(old);
    expect(oldRows).toHaveLength(4);
    expect(oldRows[2]?.fwd).toBe(3.06);
    expect(oldRows[2]?.rttUs).toBe(2039);
    expect(oldRows[2]?.tcp4).toBeNaN();
    // the current layout's per-packet anchor column is found by its header
    const pp = parseForwarderOutput(
      UDP_OUT.replace('× no-offload forwarder', '× per-packet design'),
    );
    expect(pp[2]?.xPerPacket).toBe(9.1);
  });

  it('reads bench/netlink.ts and bench/lease.ts, null when the table is not there', () => {
    expect(parseNetlinkOutput(NETLINK_OUT)).toEqual({
      sizes: [
        {
          peers: 1000,
          floorMs: 21,
          iprouteMs: 60.5,
          weftMs: 30.1,
          weftCpuMs: 40,
          addMs: 0.52,
          addRequests: 3,
          addDumps: 0,
          removeMs: 0.61,
          removeRequests: 3,
          removeDumps: 0,
        },
        {
          peers: 5000,
          floorMs: 400,
          iprouteMs: 560,
          weftMs: 440,
          weftCpuMs: 200,
          addMs: NaN,
          addRequests: NaN,
          addDumps: NaN,
          removeMs: NaN,
          removeRequests: NaN,
          removeDumps: NaN,
        },
      ],
    });
    expect(parseNetlinkOutput('Error: no root')).toBeNull();
    expect(parseLeaseOutput(LEASE_OUT, 200)).toEqual({
      hosts: 200,
      seconds: 1.95,
      ok: '200/200',
      goal: 'all succeed within 5 s: met',
    });
    expect(parseLeaseOutput('', 200)).toBeNull();
  });
});

describe('ratios and Markdown', () => {
  const rows: DataplaneRow[] = [
    { id: 'underlay', label: 'underlay', anchor: null, result: result(20, 50) },
    {
      id: 'vxlan-hand',
      label: 'kernel VXLAN by hand',
      anchor: 'underlay',
      result: result(10, 100),
    },
    {
      id: 'weft-vxlan',
      label: 'weft VXLAN',
      anchor: 'vxlan-hand',
      result: result(9.7, 125, 0.004),
    },
    { id: 'weft-udp', label: 'weft UDP', anchor: 'vxlan-hand', na: 'weftd: unknown backend type' },
  ];

  it('divides each weft row by its anchor (RTT the other way round) and keeps missing rows NaN', () => {
    const bars = buildRatios(rows, report(rows).control);
    const vx = bars.filter((b) => b.group === 'weft VXLAN ÷ kernel VXLAN by hand');
    expect(vx.map((b) => b.label)).toEqual([
      'TCP, 1 stream',
      'TCP, 4 streams',
      'UDP 64 B delivered pps',
      'ping RTT (anchor ÷ weft)',
    ]);
    expect(vx[0]?.value).toBeCloseTo(0.97, 5);
    expect(vx[3]?.value).toBeCloseTo(0.8, 5);
    const udp = bars.filter((b) => b.group.startsWith('weft UDP'));
    expect(udp).toHaveLength(4);
    expect(
      udp.every((b) => Number.isNaN(b.value) && b.note === 'weftd: unknown backend type'),
    ).toBe(true);
  });

  it('prints n/a with the reason for a missing part, never a number', () => {
    const md = toMarkdown(
      report(rows, {
        cni: { n: 10, weftAddMs: 80, weftDelMs: 60, bridgeAddMs: 20, bridgeDelMs: 30 },
        netlink: { na: 'bench/netlink.ts does not exist yet' },
      }),
    );
    const udpLine = md.split('\n').find((l) => l.startsWith('| weft UDP |'));
    expect(udpLine).toBe('| weft UDP | n/a (weftd: unknown backend type) | | | | | |');
    expect(md).toContain(
      '| peer programming (bench/netlink.ts) | n/a (bench/netlink.ts does not exist yet) | | |',
    );
    expect(md).toMatch(/\| CNI ADD, p50 of 10 .*\| 80 ms \| .*20 ms \| 0\.25 \|/);
    expect(md).toMatch(/\| weft VXLAN \| 9\.70 Gbit\/s .*× kernel VXLAN by hand: 0\.97 \//);
    expect(md).toContain('median\nof 3 rounds');
  });

  it("prints a weft row's loss at its anchor's offered 64-byte rate, and none for an anchor", () => {
    const md = toMarkdown(report(rows));
    const vx = md.split('\n').find((l) => l.startsWith('| weft VXLAN |'));
    expect(vx).toContain("(10 % lost; 0.4 % at the anchor's 110k pps)");
    const anchor = md.split('\n').find((l) => l.startsWith('| kernel VXLAN by hand'));
    expect(anchor).toContain('(10 % lost)');
  });
});

describe('SVG chart', () => {
  it('draws one bar per finite ratio, n/a rows as text, a line at 1.0, and escapes text', () => {
    const svg = ratioChart('t <&>', 's', [
      { group: 'g1', label: 'a', value: 0.5 },
      { group: 'g1', label: 'b', value: 1.5 },
      { group: 'g2', label: 'c <x>', value: NaN, note: 'missing & why' },
    ]);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<rect class="bar"/g)).toHaveLength(2);
    expect(svg).toContain('0.50×');
    expect(svg).toContain('1.50×');
    expect(svg).toContain('n/a (missing &amp; why)');
    expect(svg).toContain('t &lt;&amp;&gt;');
    expect(svg).toContain('c &lt;x&gt;');
    expect(svg).not.toMatch(/<[^a-z/!?]/); // no stray "<" from unescaped text
    // bar widths are proportional: b is three times a
    const widths = [...svg.matchAll(/<rect class="bar" x="\d+" y="[\d.]+" width="([\d.]+)"/g)].map(
      (m) => Number(m[1]),
    );
    expect(widths[1]! / widths[0]!).toBeCloseTo(3, 1);
    expect(svg).toContain('stroke-dasharray="4 3"');
  });

  it('the report chart carries every ratio group', () => {
    const svg = toSvg(
      report([
        { id: 'underlay', label: 'underlay', anchor: null, result: result(20) },
        { id: 'weft-host-gw', label: 'weft host-gw', anchor: 'underlay', result: result(18) },
      ]),
    );
    expect(svg).toContain('weft host-gw ÷ underlay');
    expect(svg).toContain('control plane');
  });
});

describe('line chart', () => {
  it('draws a line per series with points, skips NaN, prints the notes and escapes text', () => {
    const svg = lineChart({
      title: 'floor <&> weft',
      subtitle: 's',
      xLabel: 'peers',
      yLabel: 'ms',
      x: [1000, 2000, 5000],
      series: [
        { name: 'floor', values: [20, 60, 400] },
        { name: 'weft', values: [30, NaN, 450] },
        { name: 'goal', values: [23, 69, 460], dashed: true },
      ],
      notes: ['1.50×', '–', '1.13×'],
    });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('floor &lt;&amp;&gt; weft');
    expect(svg.match(/<polyline/g)).toHaveLength(3);
    expect(svg.match(/<circle/g)).toHaveLength(5); // 3 + 2 (NaN skipped), none for the dashed goal
    expect(svg).toContain('stroke-dasharray="5 4"');
    expect(svg).toContain('>1.13×<');
    expect(svg).toContain('>10<'); // decade grid from 10 to 1000
    expect(svg).toContain('>1000<');
  });
});
