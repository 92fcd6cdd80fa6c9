/**
 * Reading the Markdown tables the per-area benchmarks print (bench/lease.ts, bench/netlink.ts,
 * bench/udp.ts), so `npm run bench` runs them as they are and reports their rows. Pure; columns are
 * found by header text or row name, so a column added to those tables does not shift what is read.
 */

export interface LeaseBench {
  hosts: number;
  seconds: number;
  ok: string;
  goal: string;
}

/** bench/lease.ts: the row `| 1 | 1.23 s | 200/200 | … | <goal verdict> |`; null when absent. */
export function parseLeaseOutput(out: string, hosts: number): LeaseBench | null {
  const m = /^\| 1 \| ([\d.]+) s \| (\d+\/\d+) \|.*\| ([^|]*) \|\s*$/m.exec(out);
  if (!m) return null;
  return { hosts, seconds: Number(m[1]), ok: m[2]!, goal: m[3]!.trim() };
}

export interface NetlinkBench {
  peers: number;
  ipBatchMs: number;
  facadeMs: number;
  backendMs: number;
  backendEntries: number;
}

/** bench/netlink.ts: rows `| method | kernel entries | ms | … |` by method name; null when one is missing. */
export function parseNetlinkOutput(out: string, peers: number): NetlinkBench | null {
  const row = (re: RegExp): [number, number] | null => {
    const line = out.split('\n').find((l) => l.startsWith('|') && re.test(l));
    const cells = line?.split('|').map((c) => c.trim());
    if (!cells) return null;
    const v: [number, number] = [Number(cells[2]), Number(cells[3])];
    return v.every(Number.isFinite) ? v : null;
  };
  const anchor = row(/ip -batch` routes/);
  const facade = row(/routeReplace/);
  const backend = row(/vxlan backend/);
  if (!anchor || !backend || !facade) return null;
  return {
    peers,
    ipBatchMs: anchor[1],
    facadeMs: facade[1],
    backendMs: backend[1],
    backendEntries: backend[0],
  };
}

export interface ForwarderRow {
  path: string;
  /** Gbit/s, TCP 1 stream, h1 → h2 and reversed (-R) */
  fwd: number;
  rev: number;
  /** Gbit/s with 4 streams and delivered 64-byte UDP kpps (NaN where bench/udp.ts has no column) */
  tcp4: number;
  kpps: number;
  rttUs: number;
  /** ratio to bench/udp.ts's own kernel VXLAN anchor, forward direction */
  xVxlan: number;
  /** ratio to flannel's per-packet design measured in that run (NaN where bench/udp.ts has none) */
  xPerPacket: number;
  cpuPerGbit: number | null;
}

/** bench/udp.ts: every row of its first table. */
export function parseForwarderOutput(out: string): ForwarderRow[] {
  // Columns are found by their header text, so added columns do not shift what is read.
  const lines = out.split('\n').filter((l) => l.startsWith('|'));
  const cells = (l: string): string[] =>
    l
      .split('|')
      .slice(1, -1)
      .map((x) => x.trim());
  const header = cells(lines[0] ?? '');
  const col = (re: RegExp): number => header.findIndex((h) => re.test(h));
  const idx = {
    fwd: col(/^TCP 1 stream/),
    rev: col(/^reverse/),
    tcp4: col(/^TCP 4/),
    pps: col(/UDP 64/),
    rtt: col(/ping RTT/),
    xv: col(/kernel VXLAN/),
    xpp: col(/per-packet/),
    cpu: col(/vCPU/),
  };
  const num = (c: string[], i: number): number => {
    const v = i < 0 ? undefined : c[i]?.split('/')[0]?.trim();
    return v === undefined || v === '–' || v === '' ? NaN : Number(v);
  };
  const rows: ForwarderRow[] = [];
  for (const line of lines.slice(1)) {
    const c = cells(line);
    if (c[0]?.startsWith('---') || c.length !== header.length) continue;
    const cpu = num(c, idx.cpu);
    rows.push({
      path: c[0]!,
      fwd: num(c, idx.fwd),
      rev: num(c, idx.rev),
      tcp4: num(c, idx.tcp4),
      kpps: num(c, idx.pps),
      rttUs: num(c, idx.rtt),
      xVxlan: num(c, idx.xv),
      xPerPacket: num(c, idx.xpp),
      cpuPerGbit: Number.isNaN(cpu) ? null : cpu,
    });
  }
  return rows;
}
