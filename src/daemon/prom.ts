/**
 * weftd's Prometheus metrics registry: counters, gauges and histograms with labels, `collect()` hooks read
 * at scrape time, and the text exposition format 0.0.4. It replaces `prom-client`, which costs 10-12 MiB
 * of resident memory imported alone (a few MB inside weftd at 1000 peers; it loads a push gateway client, cluster
 * aggregation, OpenTelemetry exemplars and stream helpers that weftd never uses; README "Dependency
 * decisions"). The API is the subset of prom-client's that src/daemon/metrics.ts and
 * src/daemon/wireguard-metrics.ts use, with the same semantics, so the exported series are unchanged.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

export type Labels = Record<string, string | number>;

interface MetricOptions<M> {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
  readonly registers?: readonly Registry[];
  /** Called before every scrape with the metric as `this` (refresh values read elsewhere). */
  collect?(this: M): void;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value or HELP text escaped for the text format. */
const escapeLabel = (v: string): string =>
  v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

/** Prometheus' float formatting: integers plain, ±Inf and NaN spelled out. */
function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(String(v))}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

abstract class Metric<M> {
  readonly name: string;
  readonly help: string;
  protected readonly labelNames: readonly string[];
  private readonly collectFn: ((this: M) => void) | undefined;

  constructor(
    o: MetricOptions<M>,
    readonly type: 'counter' | 'gauge' | 'histogram',
  ) {
    if (!NAME.test(o.name)) throw new TypeError(`invalid metric name ${JSON.stringify(o.name)}`);
    for (const l of o.labelNames ?? [])
      if (!LABEL.test(l) || l.startsWith('__'))
        throw new TypeError(`invalid label name ${JSON.stringify(l)} for ${o.name}`);
    this.name = o.name;
    this.help = o.help;
    this.labelNames = o.labelNames ?? [];
    this.collectFn = o.collect;
    for (const r of o.registers ?? []) r.registerMetric(this);
  }

  /** The series key of `labels`, which must use only the declared label names. */
  protected key(labels: Labels): string {
    for (const k of Object.keys(labels))
      if (!this.labelNames.includes(k))
        throw new TypeError(`label ${JSON.stringify(k)} is not declared for ${this.name}`);
    return JSON.stringify(this.labelNames.map((n) => (n in labels ? String(labels[n]) : null)));
  }

  protected labelsOf(key: string): Labels {
    const values = JSON.parse(key) as (string | null)[];
    const out: Labels = {};
    this.labelNames.forEach((n, i) => {
      if (values[i] !== null) out[n] = values[i]!;
    });
    return out;
  }

  /** The metric's lines (HELP, TYPE, samples) after running its collect hook. */
  render(): string {
    this.collectFn?.call(this as unknown as M);
    return [
      `# HELP ${this.name} ${escapeHelp(this.help)}`,
      `# TYPE ${this.name} ${this.type}`,
      ...this.samples(),
    ].join('\n');
  }

  protected abstract samples(): string[];
  abstract reset(): void;
}

/** Labels first, the value last: `inc()`, `inc(2)`, `inc({op: 'get'})`, `inc({op: 'get'}, 2)`. */
function split(a?: Labels | number, b?: number): [Labels, number | undefined] {
  return typeof a === 'number' || a === undefined ? [{}, a] : [a, b];
}

class ValueMetric<M> extends Metric<M> {
  protected readonly values = new Map<string, number>();

  protected samples(): string[] {
    if (this.labelNames.length === 0 && this.values.size === 0) return [`${this.name} 0`];
    return [...this.values].map(
      ([k, v]) => `${this.name}${labelText(this.labelsOf(k))} ${formatValue(v)}`,
    );
  }

  reset(): void {
    this.values.clear();
  }
}

export class Counter extends ValueMetric<Counter> {
  constructor(o: MetricOptions<Counter>) {
    super(o, 'counter');
  }

  inc(labelsOrValue?: Labels | number, value?: number): void {
    const [labels, v] = split(labelsOrValue, value);
    const by = v ?? 1;
    if (!Number.isFinite(by) || by < 0)
      throw new TypeError(`${this.name}: a counter only goes up (got ${by})`);
    const k = this.key(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
}

export class Gauge extends ValueMetric<Gauge> {
  constructor(o: MetricOptions<Gauge>) {
    super(o, 'gauge');
  }

  set(labelsOrValue: Labels | number, value?: number): void {
    const [labels, v] = split(labelsOrValue, value);
    if (typeof v !== 'number') throw new TypeError(`${this.name}: set needs a value`);
    this.values.set(this.key(labels), v);
  }
}

interface HistogramSeries {
  readonly counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric<Histogram> {
  private readonly buckets: readonly number[];
  private readonly series = new Map<string, HistogramSeries>();

  constructor(o: MetricOptions<Histogram> & { readonly buckets: readonly number[] }) {
    super(o, 'histogram');
    if (o.labelNames?.includes('le')) throw new TypeError(`${o.name}: 'le' is reserved`);
    this.buckets = [...o.buckets].sort((a, b) => a - b);
  }

  observe(labelsOrValue: Labels | number, value?: number): void {
    const [labels, v] = split(labelsOrValue, value);
    if (typeof v !== 'number' || Number.isNaN(v))
      throw new TypeError(`${this.name}: observe needs a number`);
    const k = this.key(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) s.counts[i]!++;
    s.sum += v;
    s.count++;
  }

  protected samples(): string[] {
    const out: string[] = [];
    for (const [k, s] of this.series) {
      const labels = this.labelsOf(k);
      this.buckets.forEach((b, i) =>
        out.push(`${this.name}_bucket${labelText(labels, ['le', formatValue(b)])} ${s.counts[i]}`),
      );
      out.push(`${this.name}_bucket${labelText(labels, ['le', '+Inf'])} ${s.count}`);
      out.push(`${this.name}_sum${labelText(labels)} ${formatValue(s.sum)}`);
      out.push(`${this.name}_count${labelText(labels)} ${s.count}`);
    }
    return out;
  }

  reset(): void {
    this.series.clear();
  }
}

/** What a registry holds: a named metric that renders its own lines. */
export interface RegisteredMetric {
  readonly name: string;
  render(): string;
}

export class Registry {
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';
  private readonly metricsByName = new Map<string, RegisteredMetric>();

  registerMetric(m: RegisteredMetric): void {
    if (this.metricsByName.has(m.name))
      throw new Error(`a metric named ${m.name} is already registered`);
    this.metricsByName.set(m.name, m);
  }

  getSingleMetric(name: string): RegisteredMetric | undefined {
    return this.metricsByName.get(name);
  }

  /** The text exposition of every metric (a collect hook that throws costs only its own metric). */
  metrics(): Promise<string> {
    const parts: string[] = [];
    for (const m of this.metricsByName.values()) {
      try {
        parts.push(m.render());
      } catch {
        /* a metric whose source is gone (e.g. a closed device) is left out of this scrape */
      }
    }
    return Promise.resolve(`${parts.join('\n')}\n`);
  }
}

/** The process's own figures from /proc (Linux), 0 where unreadable. */
function procStatus(field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
      readFileSync('/proc/self/status', 'utf8'),
    );
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Open file descriptors (Linux), or null. */
function openFds(): number | null {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return null;
  }
}

/** A monotonic counter set from `read()` at scrape time (left alone while it returns null). */
export function scrapedCounter(
  registers: readonly Registry[],
  name: string,
  help: string,
  read: () => number | null,
): Counter {
  return new Counter({
    name,
    help,
    registers,
    collect() {
      const v = read();
      if (v === null) return;
      this.reset();
      this.inc(v);
    },
  });
}

/**
 * The process and Node.js metrics prom-client's collectDefaultMetrics exported under the same names
 * (the subset operators chart: CPU, memory, file descriptors, start time, heap, version).
 */
export function collectDefaultMetrics(o: { register: Registry; prefix?: string }): void {
  const p = o.prefix ?? '';
  const registers = [o.register];
  const cpu = (): { user: number; system: number } => process.cpuUsage();
  const counters: [string, string, () => number][] = [
    [
      'process_cpu_user_seconds_total',
      'Total user CPU time spent in seconds.',
      () => cpu().user / 1e6,
    ],
    [
      'process_cpu_system_seconds_total',
      'Total system CPU time spent in seconds.',
      () => cpu().system / 1e6,
    ],
    [
      'process_cpu_seconds_total',
      'Total user and system CPU time spent in seconds.',
      () => {
        const c = cpu();
        return (c.user + c.system) / 1e6;
      },
    ],
  ];
  for (const [name, help, read] of counters) scrapedCounter(registers, `${p}${name}`, help, read);
  const start = Math.round(Date.now() / 1000 - process.uptime());
  /** Gauges read at scrape time; a reader that returns null leaves its series out. */
  const gauges: [string, string, () => number | null][] = [
    [
      'process_start_time_seconds',
      'Start time of the process since unix epoch in seconds.',
      () => start,
    ],
    [
      'process_resident_memory_bytes',
      'Resident memory size in bytes.',
      () => procStatus('VmRSS') || process.memoryUsage().rss,
    ],
    ['process_virtual_memory_bytes', 'Virtual memory size in bytes.', () => procStatus('VmSize')],
    ['process_open_fds', 'Number of open file descriptors.', openFds],
    [
      'nodejs_heap_size_total_bytes',
      'Process heap size from Node.js in bytes.',
      () => process.memoryUsage().heapTotal,
    ],
    [
      'nodejs_heap_size_used_bytes',
      'Process heap size used from Node.js in bytes.',
      () => process.memoryUsage().heapUsed,
    ],
    [
      'nodejs_external_memory_bytes',
      'Node.js external memory size in bytes.',
      () => process.memoryUsage().external,
    ],
  ];
  for (const [name, help, read] of gauges)
    new Gauge({
      name: `${p}${name}`,
      help,
      registers,
      collect() {
        const v = read();
        if (v !== null) this.set(v);
      },
    });
  for (const [what, pick] of [
    ['total', 'space_size'],
    ['used', 'space_used_size'],
    ['available', 'space_available_size'],
  ] as const) {
    new Gauge({
      name: `${p}nodejs_heap_space_size_${what}_bytes`,
      help: `Process heap space size ${what} from Node.js in bytes.`,
      labelNames: ['space'],
      registers,
      collect() {
        for (const s of getHeapSpaceStatistics())
          this.set({ space: s.space_name.replace(/_space$/, '') }, s[pick]);
      },
    });
  }
  new Gauge({
    name: `${p}nodejs_version_info`,
    help: 'Node.js version info.',
    labelNames: ['version', 'major', 'minor', 'patch'],
    registers,
    collect() {
      const [major, minor, patch] = process.versions.node.split('.');
      this.set(
        { version: process.version, major: major ?? '', minor: minor ?? '', patch: patch ?? '' },
        1,
      );
    },
  });
}
