/**
 * weftd's Prometheus registry (src/daemon/prom.ts): the text exposition format 0.0.4 as Prometheus
 * parses it (HELP/TYPE, label escaping, histogram buckets with +Inf, _sum and _count), collect hooks
 * at scrape time, and the mistakes it refuses (undeclared labels, a counter going down, duplicates).
 */
import { describe, expect, it } from 'vitest';
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
} from '../../../src/daemon/prom.js';

describe('Prometheus registry', () => {
  it('writes counters, gauges and histograms in the text format', async () => {
    const r = new Registry();
    const c = new Counter({
      name: 'x_total',
      help: 'a "count"\nof things',
      labelNames: ['op'],
      registers: [r],
    });
    const plain = new Counter({ name: 'plain_total', help: 'never incremented', registers: [r] });
    const g = new Gauge({ name: 'g', help: 'gauge', labelNames: ['k'], registers: [r] });
    const h = new Histogram({
      name: 'h_seconds',
      help: 'durations',
      labelNames: ['b'],
      buckets: [0.5, 0.1],
      registers: [r],
    });
    c.inc({ op: 'get' });
    c.inc({ op: 'get' }, 2);
    c.inc({ op: 'a\\b"c\nd' });
    g.set({ k: 'v' }, 1.5);
    g.set({ k: 'inf' }, Number.POSITIVE_INFINITY);
    h.observe({ b: 'x' }, 0.05);
    h.observe({ b: 'x' }, 0.3);
    h.observe({ b: 'x' }, 7);
    expect(plain.name).toBe('plain_total');
    expect(await r.metrics()).toBe(
      [
        '# HELP x_total a "count"\\nof things',
        '# TYPE x_total counter',
        'x_total{op="get"} 3',
        'x_total{op="a\\\\b\\"c\\nd"} 1',
        '# HELP plain_total never incremented',
        '# TYPE plain_total counter',
        'plain_total 0',
        '# HELP g gauge',
        '# TYPE g gauge',
        'g{k="v"} 1.5',
        'g{k="inf"} +Inf',
        '# HELP h_seconds durations',
        '# TYPE h_seconds histogram',
        'h_seconds_bucket{b="x",le="0.1"} 1',
        'h_seconds_bucket{b="x",le="0.5"} 2',
        'h_seconds_bucket{b="x",le="+Inf"} 3',
        'h_seconds_sum{b="x"} 7.35',
        'h_seconds_count{b="x"} 3',
        '',
      ].join('\n'),
    );
    expect(r.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('runs collect hooks at every scrape, with the metric as this', async () => {
    const r = new Registry();
    let n = 0;
    new Gauge({
      name: 'scraped',
      help: 'read at scrape time',
      labelNames: ['peer'],
      registers: [r],
      collect() {
        this.reset();
        n++;
        for (let i = 0; i < n; i++) this.set({ peer: `p${i}` }, i);
      },
    });
    new Counter({
      name: 'broken_total',
      help: 'its source is gone',
      registers: [r],
      collect() {
        throw new Error('device closed');
      },
    });
    expect(await r.metrics()).toContain('scraped{peer="p0"} 0\n');
    const second = await r.metrics();
    expect(second).toContain('scraped{peer="p1"} 1\n');
    expect(second).not.toContain('broken_total');
    expect(r.getSingleMetric('scraped')?.name).toBe('scraped');
    expect(r.getSingleMetric('absent')).toBeUndefined();
  });

  it('refuses undeclared labels, a counter going down, bad names and duplicates', () => {
    const r = new Registry();
    const c = new Counter({ name: 'c_total', help: 'h', labelNames: ['op'], registers: [r] });
    expect(() => c.inc({ other: 'x' })).toThrow(/not declared/);
    expect(() => c.inc(-1)).toThrow(/only goes up/);
    expect(() => new Gauge({ name: 'bad-name', help: 'h' })).toThrow(/invalid metric name/);
    expect(() => new Gauge({ name: 'ok', help: 'h', labelNames: ['__x'] })).toThrow(/label name/);
    expect(() => new Counter({ name: 'c_total', help: 'h', registers: [r] })).toThrow(/already/);
    expect(
      () => new Histogram({ name: 'hh', help: 'h', labelNames: ['le'], buckets: [1] }),
    ).toThrow(/reserved/);
  });

  it('exports the process and Node.js metrics under the names prom-client used', async () => {
    const r = new Registry();
    collectDefaultMetrics({ register: r, prefix: 'weftd_' });
    const text = await r.metrics();
    for (const name of [
      'weftd_process_cpu_seconds_total',
      'weftd_process_resident_memory_bytes',
      'weftd_process_start_time_seconds',
      'weftd_process_open_fds',
      'weftd_nodejs_heap_size_used_bytes',
      'weftd_nodejs_external_memory_bytes',
    ])
      expect(text).toMatch(new RegExp(`^${name} [0-9.e+]+$`, 'm'));
    expect(text).toMatch(/^weftd_nodejs_heap_space_size_used_bytes\{space="old"\} \d+$/m);
    expect(text).toMatch(/^weftd_nodejs_version_info\{version="v\d+\.\d+\.\d+",.*\} 1$/m);
    const rss = Number(/^weftd_process_resident_memory_bytes (\d+)$/m.exec(text)![1]);
    expect(rss).toBeGreaterThan(10 << 20);
  });
});
