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

/** One size of bench/netlink.ts: weft against the kernel's floor (ms, medians). */
export interface NetlinkSize {
  peers: number;
  /** bench/native/rtnl-floor.c: the same entries as batched rtnetlink from C */
  floorMs: number;
  /** `ip -batch` + `bridge -batch` */
  iprouteMs: number;
  /** the vxlan backend's full reconcile of `peers` peers */
  weftMs: number;
  weftCpuMs: number;
  /** one peer added / removed through the lease watch on top of `peers`; requests and dumps it cost */
  addMs: number;
  addRequests: number;
  addDumps: number;
  removeMs: number;
  removeRequests: number;
  removeDumps: number;
}

export interface NetlinkBench {
  sizes: NetlinkSize[];
}

/**
 * bench/netlink.ts: its two tables (full reconcile per size, then incremental per size), columns found by
 * header text; null when the full-reconcile table is missing. A size without an incremental row reads NaN.
 */
export function parseNetlinkOutput(out: string): NetlinkBench | null {
  const lines = out.split('\n').filter((l) => l.startsWith('|'));
  const cells = (l: string): string[] =>
    l
      .split('|')
      .slice(1, -1)
      .map((x) => x.trim());
  const table = (headerRe: RegExp): { header: string[]; rows: string[][] } | null => {
    const at = lines.findIndex((l) => headerRe.test(l));
    if (at < 0) return null;
    const header = cells(lines[at]!);
    const rows: string[][] = [];
    for (const l of lines.slice(at + 2)) {
      const c = cells(l);
      if (c.length !== header.length || !/^\d+$/.test(c[0]!)) break;
      rows.push(c);
    }
    return { header, rows };
  };
  const num = (v: string | undefined): number => {
    const x = v === undefined || v === '' || v === '–' ? NaN : Number(v.replace(/[^\d.]/g, ''));
    return Number.isFinite(x) ? x : NaN;
  };
  const full = table(/floor: C batched/);
  if (!full || full.rows.length === 0) return null;
  const col = (t: { header: string[] }, re: RegExp): number =>
    t.header.findIndex((h) => re.test(h));
  const fc = {
    floor: col(full, /^floor/),
    ip: col(full, /ip -batch/),
    weft: col(full, /^weft full reconcile/),
    cpu: col(full, /^weft CPU/),
  };
  const inc = table(/incremental add/);
  const ic = inc
    ? {
        add: col(inc, /incremental add/),
        remove: col(inc, /incremental remove/),
      }
    : null;
  const sizes = full.rows.map((r): NetlinkSize => {
    const peers = Number(r[0]);
    const i = inc?.rows.find((x) => Number(x[0]) === peers);
    const at = (c: number, k: number): number => (i && c >= 0 ? num(i[c + k]) : NaN);
    return {
      peers,
      floorMs: num(r[fc.floor]),
      iprouteMs: num(r[fc.ip]),
      weftMs: num(r[fc.weft]),
      weftCpuMs: num(r[fc.cpu]),
      addMs: at(ic?.add ?? -1, 0),
      addRequests: at(ic?.add ?? -1, 1),
      addDumps: at(ic?.add ?? -1, 2),
      removeMs: at(ic?.remove ?? -1, 0),
      removeRequests: at(ic?.remove ?? -1, 1),
      removeDumps: at(ic?.remove ?? -1, 2),
    };
  });
  return sizes.every((x) => Number.isFinite(x.floorMs) && Number.isFinite(x.weftMs))
    ? { sizes }
    : null;
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
