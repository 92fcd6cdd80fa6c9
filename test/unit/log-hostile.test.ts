/**
 * The logger against hostile values: a config from etcd (or any field) nested deep enough to overflow
 * JSON.stringify, a cycle, or a cyclic error cause must never make a log call throw — before, weftd's
 * "network config loaded" line turned a config with a deeply nested unknown field into exit 1.
 */
import { describe, expect, it } from 'vitest';
import { Daemon } from '../../src/daemon/run.js';
import { createDaemonMetrics } from '../../src/daemon/metrics.js';
import { parseOptions } from '../../src/daemon/options.js';
import { createBackendRegistry } from '../../src/daemon/backends.js';
import { createJsonLogger } from '../../src/log/logger.js';
import { parseNetworkConfig } from '../../src/subnet/config.js';
import type { SubnetManager } from '../../src/subnet/manager.js';

const N = 100_000;
const deepJson = `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"},"Note":${'['.repeat(N)}1${']'.repeat(N)}}`;

describe('logger with hostile fields', () => {
  it('never throws; the line names what was dropped', () => {
    const lines: string[] = [];
    const log = createJsonLogger({ write: (l) => lines.push(l) });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    const e1 = new Error('one');
    const e2 = new Error('two', { cause: e1 });
    (e1 as { cause?: unknown }).cause = e2;
    expect(() => log.info('deep', { config: JSON.parse(deepJson) })).not.toThrow();
    expect(() => log.warn('cycle', { cyclic })).not.toThrow();
    expect(() => log.error('cyclic cause', { err: e2 })).not.toThrow();
    expect(lines).toHaveLength(3);
    const [deep, cycle, cause] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(deep).toMatchObject({ msg: 'deep', level: 30 });
    expect(deep!['logFieldsDropped']).toMatch(/not serialisable/);
    expect(cycle).toMatchObject({ msg: 'cycle', level: 40 });
    expect(cause).toMatchObject({ msg: 'cyclic cause', err: { message: 'two' } });
  });

  it('weftd refuses a config with a deeply nested unknown field with a clear error, never a crash', async () => {
    // src/subnet/config.ts caps the config's size and depth before parsing (README "Hostile etcd data"):
    // the 100k-deep field is refused as too long; a short one nested past 32 levels names the field.
    expect(() => parseNetworkConfig(deepJson)).toThrow(/more than the 65536 weft reads/);
    const deepShort = `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"},"Note":${'['.repeat(40)}1${']'.repeat(40)}}`;
    expect(() => parseNetworkConfig(deepShort)).toThrow(
      /field Note is nested deeper than 32 levels/,
    );
    // a config within the bounds with an unknown field still loads and is logged
    const config = parseNetworkConfig(
      '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"},"Note":[[[["x"]]]]}',
    );
    const subnets = { getNetworkConfig: () => Promise.resolve(config) } as unknown as SubnetManager;
    const lines: string[] = [];
    const daemon = new Daemon(parseOptions([], {}), {
      log: createJsonLogger({ write: (l) => lines.push(l) }),
      signal: new AbortController().signal,
      createSubnetManager: () => subnets,
      backends: createBackendRegistry({}),
      readHost: () => Promise.reject(new Error('unused')),
      nft: { apply: () => Promise.resolve(), listTable: () => Promise.resolve(null) },
      metrics: createDaemonMetrics({ processMetrics: false }),
    });
    await expect(daemon.loadNetworkConfig(subnets, new AbortController().signal)).resolves.toBe(
      config,
    );
    expect(lines.some((l) => l.includes('network config loaded'))).toBe(true);
  });
});
