/**
 * Hostile etcd data against the real watch path (issue 11 item 4), on a real etcd:
 *  - a lease value nested 100k levels deep, then a compaction that forces a re-list: the re-list diff
 *    used to JSON.stringify it, and the RangeError ended the watch (weftd exited, at every compaction);
 *  - a seeded fuzzer writing hostile keys and values (depth, size up to etcd's 1.5 MiB request limit,
 *    non-UTF-8 bytes, numbers out of range, odd key names, thousands of keys) and valid leases, with
 *    compactions and re-lists in between, for a bounded time: the watch never fails, every valid
 *    lease arrives, no hostile one does, the heap stays bounded, and weftctl's readers (leases,
 *    config get, human and --json) answer with the hostile keys marked invalid;
 *  - a consumer that stops pulling while 5000 puts churn 50 keys: the watch queue coalesces per key;
 *  - a batch of puts under one store lease costs one TTL lookup, not one per put.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../../src/cli/run.js';
import { encodeLeaseAttrs } from '../../src/lease/codec.js';
import { applyLeaseEvents } from '../../src/lease/diff.js';
import type { Lease } from '../../src/lease/lease.js';
import { nullLogger } from '../../src/log/logger.js';
import { EtcdLeaseRegistry } from '../../src/subnet/etcd/etcd-registry.js';
import type { RegistryBatch } from '../../src/subnet/registry.js';
import { etcdWriter, type EtcdWriter } from '../helpers/etcd-writer.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import {
  attrs,
  CuttableProxy,
  storeRevision,
  WatchRecorder,
  useSubnetEtcd,
} from './subnet-helpers.js';
import { prng } from '../helpers/random.js';

const runnable = requireCaps('etcd', 'etcdctl');
useLeakCheck();

const CONFIG = { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } };
const DEEP = 100_000;
const deepValue = (): string =>
  `{"PublicIP":"198.18.9.9","BackendType":"vxlan","BackendData":${'['.repeat(DEEP)}1${']'.repeat(DEEP)}}`;

type Hostile = { key: Buffer; value: Buffer; what: string };

/** One hostile key/value pair of a randomly chosen kind. */
function hostile(rnd: () => number, n: number): Hostile {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const subnetKey = `10.6.${n % 256}.0-24`; // valid key, outside the valid leases' 10.5/16
  const nest = (depth: number, open: string, close: string, leaf: string): string =>
    open.repeat(depth) + leaf + close.repeat(depth);
  const kinds: Array<() => Hostile> = [
    () => ({ key: Buffer.from(subnetKey), value: Buffer.from(deepValue()), what: 'deep 100k' }),
    () => ({
      key: Buffer.from(subnetKey),
      value: Buffer.from(
        `{"PublicIP":"198.18.9.9","BackendData":${nest(33 + Math.floor(rnd() * 500), '{"a":', '}', '1')}}`,
      ),
      what: 'deep objects under the size cap',
    }),
    () => ({
      key: Buffer.from(subnetKey),
      value: Buffer.from(
        `{"PublicIP":"198.18.9.9","BackendData":"${'x'.repeat(70_000 + Math.floor(rnd() * 1_400_000))}"}`,
      ),
      what: 'huge string (up to etcd’s request limit)',
    }),
    () => ({
      key: Buffer.from(subnetKey),
      value: Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 2000) }, () => rnd() * 256)),
      what: 'random bytes',
    }),
    () => ({
      key: Buffer.from(subnetKey),
      value: Buffer.from(
        pick([
          '{"PublicIP":1e400}',
          '{"PublicIP":"198.18.9.9","BackendData":{"VNI":1e400,"VtepMAC":-0}}',
          '{"PublicIP":"198.18.9.9","BackendData":{"VNI":123456789012345678901234567890}}',
          '{"PublicIP":"198.18.9.9","__proto__":{"polluted":true},"constructor":{"prototype":1}}',
          '{"PublicIP":"999.1.1.1"}',
          '{"PublicIP":["198.18.9.9"]}',
          '{"PublicIPv6":{"x":1},"PublicIP":"198.18.9.9"}',
          '{"PublicIP":"198.18.9.9","BackendType":{"toString":1}}',
          'null',
          '[]',
          '"a string"',
          '{"PublicIP":"\\ud800"}',
          '',
        ]),
      ),
      what: 'wrong types and numbers out of range',
    }),
    () => ({
      key: Buffer.from(
        pick([
          'x'.repeat(10_000 + Math.floor(rnd() * 100_000)),
          '../../etc/passwd',
          '10.5.1.0-24/../x',
          '\u0000\u0001\u001b[31mred',
          '__proto__',
          'constructor',
          '10.5.1.0-24\n',
          '10.5.256.0-24',
          '10.5.1.0-33',
          '０.５.１.０-24',
          `10.5.1.0-24&${'f'.repeat(5000)}-64`,
        ]) + `#${n}`,
      ),
      value: Buffer.from(encodeLeaseAttrs(attrs(200 + (n % 50)))),
      what: 'odd key',
    }),
    () => ({
      key: Buffer.concat([Buffer.from('10.7.0.0-24'), Buffer.from([0xff, 0xfe, n % 256])]),
      value: Buffer.from([0xc3, 0x28, 0xa0, 0xa1]),
      what: 'non-UTF-8 key and value',
    }),
  ];
  return pick(kinds)();
}

function gcHeapMiB(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed / (1 << 20);
}

describe.skipIf(!runnable)('hostile etcd data on the real watch path', () => {
  const { etcd, managers, stops } = useSubnetEtcd();
  let client: EtcdWriter;
  beforeAll(() => {
    client = etcdWriter(etcd.endpoints);
  });
  afterAll(() => client?.close());

  /** A watch whose failure is recorded (not thrown into the void) so the test can assert on it. */
  function watch(endpoint: string, prefix: string): { rec: WatchRecorder; failed: () => unknown } {
    const m = managers.make(prefix, { endpoints: [endpoint] });
    const ac = new AbortController();
    const rec = new WatchRecorder(m.watchLeases(null, ac.signal));
    let failure: unknown = null;
    rec.done.catch((err: unknown) => (failure = err));
    stops.push(async () => {
      ac.abort();
      await rec.done.catch(() => {});
    });
    return { rec, failed: () => failure };
  }

  function proxyFor(): CuttableProxy {
    const url = new URL(etcd.endpoints[0]!);
    const proxy = new CuttableProxy({ host: url.hostname, port: Number(url.port) });
    stops.push(() => proxy.stop());
    return proxy;
  }

  const put = (prefix: string, key: string | Buffer, value: string | Buffer) =>
    client.put(Buffer.concat([Buffer.from(`${prefix}/subnets/`), Buffer.from(key)]), value);

  it('a lease value nested 100k deep survives a compaction and re-list; the watch goes on', async () => {
    const proxy = proxyFor();
    await proxy.start();
    const prefix = etcd.prefix('deep');
    await client.put(`${prefix}/config`, JSON.stringify(CONFIG));
    await put(prefix, '10.5.1.0-24', encodeLeaseAttrs(attrs(1)));
    await put(prefix, '10.5.2.0-24', deepValue());
    const { rec, failed } = watch(proxy.endpoint, prefix);
    await rec.waitFor((e) => e.length >= 1);
    proxy.disconnect();
    await put(prefix, '10.5.2.0-24', deepValue()); // rewritten while cut off: a re-list compares it
    await put(prefix, '10.5.3.0-24', encodeLeaseAttrs(attrs(3)));
    await etcd.etcdctl(['compact', String(await storeRevision(etcd))]);
    proxy.reconnect();
    await rec.waitFor((e) => e.length >= 2 || failed() !== null, 20_000);
    expect(failed()).toBeNull();
    await put(prefix, '10.5.4.0-24', encodeLeaseAttrs(attrs(4)));
    await rec.waitFor((e) => e.length >= 3 || failed() !== null, 10_000);
    expect(failed()).toBeNull();
    const view = new Map<string, Lease>();
    applyLeaseEvents(view, rec.events);
    expect([...view.keys()].sort()).toEqual(['10.5.1.0-24', '10.5.3.0-24', '10.5.4.0-24']);
  });

  it('seeded fuzz: hostile keys and values with re-lists never stall or crash the watch or weftctl', async () => {
    const seed = Number(process.env['WEFT_FUZZ_SEED'] ?? Date.now() % 1_000_000);
    const rnd = prng(seed);
    const note = `seed ${seed} (replay with WEFT_FUZZ_SEED=${seed})`;
    const proxy = proxyFor();
    await proxy.start();
    const prefix = etcd.prefix('fuzz');
    await client.put(`${prefix}/config`, JSON.stringify(CONFIG));
    const heap0 = gcHeapMiB();
    const { rec, failed } = watch(proxy.endpoint, prefix);
    await rec.waitFor((e) => e.length >= 1);
    const valid = new Set<string>();
    const kinds = new Map<string, number>();
    /** The kind of the last hostile write per key (some, like unknown fields, are valid leases). */
    const lastKind = new Map<string, string>();
    let n = 0;
    const deadline = Date.now() + 15_000;
    for (let round = 0; Date.now() < deadline && round < 8; round++) {
      const cut = round % 2 === 1;
      if (cut) proxy.disconnect();
      const writes: Array<Promise<unknown>> = [];
      for (let i = 0; i < 60; i++, n++) {
        if (rnd() < 0.25) {
          const key = `10.5.${n % 250}.0-24`;
          valid.add(key);
          writes.push(put(prefix, key, encodeLeaseAttrs(attrs(n % 250, { backendData: { n } }))));
        } else {
          const h = hostile(rnd, n);
          kinds.set(h.what, (kinds.get(h.what) ?? 0) + 1);
          lastKind.set(h.key.toString(), h.what);
          writes.push(put(prefix, h.key, h.value));
        }
        if (writes.length >= 8) await Promise.all(writes.splice(0));
      }
      // Thousands of junk keys in one transaction (one revision, one watch response).
      writes.push(
        client.putAll(
          Array.from({ length: 100 }, (_, j) => ({
            key: `${prefix}/subnets/junk-${round}-${j}`,
            value: `{"PublicIP":${j}}`,
          })),
        ),
      );
      await Promise.all(writes);
      if (cut) {
        await etcd.etcdctl(['compact', String(await storeRevision(etcd))]);
        proxy.reconnect();
      }
      expect(failed(), note).toBeNull();
    }
    // Every valid lease arrives (with its latest value), no hostile one does, and the watch is alive.
    const allThere = (): boolean => {
      const view = new Map<string, Lease>();
      applyLeaseEvents(view, rec.events);
      const ours = [...view.keys()].filter((k) => k.startsWith('10.5.'));
      return [...valid].every((k) => view.has(k)) && ours.length === valid.size;
    };
    await rec
      .waitFor(() => allThere() || failed() !== null, 20_000)
      .catch((err: unknown) => {
        throw new Error(`${note}: ${String(err)}`);
      });
    expect(failed(), note).toBeNull();
    expect(
      kinds.size,
      `${note}: hostile kinds written ${JSON.stringify([...kinds])}`,
    ).toBeGreaterThan(4);
    const view = new Map<string, Lease>();
    applyLeaseEvents(view, rec.events);
    const neverValid = [
      'deep 100k',
      'deep objects under the size cap',
      'huge string (up to etcd’s request limit)',
      'odd key',
      'non-UTF-8 key and value',
    ];
    for (const l of view.values()) {
      if (valid.has(l.key)) {
        expect(l.attrs.publicIp).toMatch(/^198\.18\.0\./);
        continue;
      }
      expect(neverValid, `${note}: ${l.key} delivered`).not.toContain(lastKind.get(l.key));
    }

    // weftctl reads the same keyspace: every command answers (exit 1: invalid keys are a problem).
    const io: CliIo = {
      env: {},
      stdoutIsTty: false,
      stderrIsTty: false,
      writeErr: () => {},
      readStdin: async () => '',
    };
    const ctl = (args: string[]) =>
      runCli(
        [
          ...args,
          `--etcd-endpoints=${etcd.endpoints[0]}`,
          `--etcd-prefix=${prefix}`,
          '--timeout=5',
        ],
        io,
      );
    const json = await ctl(['leases', '--json']);
    expect(json.exitCode, json.stdout.slice(0, 500)).toBe(1);
    const doc = JSON.parse(json.stdout) as {
      leases: Array<{ key: string; problem: string | null }>;
    };
    const good = new Set(doc.leases.filter((l) => l.problem === null).map((l) => l.key));
    for (const k of valid) expect(good.has(k), `${note}: weftctl lists ${k}`).toBe(true);
    for (const [k, what] of lastKind)
      if (neverValid.includes(what)) expect(good.has(k), `${note}: ${what} ${k}`).toBe(false);
    expect(doc.leases.some((l) => /more than the 65536/.test(l.problem ?? ''))).toBe(
      (kinds.get('deep 100k') ?? 0) + (kinds.get('huge string (up to etcd’s request limit)') ?? 0) >
        0,
    );
    expect(
      doc.leases.every((l) => l.key.length < 200),
      'keys are cut for display',
    ).toBe(true);
    const human = await ctl(['leases']);
    expect(human.exitCode).toBe(1);
    expect(human.stdout).toContain('invalid');
    // A hostile config: refused with a clear message, not a crash.
    await client.put(`${prefix}/config`, `{"Network":${'['.repeat(DEEP)}${']'.repeat(DEEP)}}`);
    const cfg = await ctl(['config', 'get', '--json']);
    expect(cfg.exitCode).toBe(3);
    expect(cfg.stdout).toContain('more than the 65536');

    // The heap holds the bounded entries, not the megabytes of hostile values written.
    const heap1 = gcHeapMiB();
    expect(heap1 - heap0, `${note}: heap grew from ${heap0} to ${heap1} MiB`).toBeLessThan(64);
  }, 60_000);

  it('a consumer that stops pulling sees churn coalesced per key, not queued per put', async () => {
    const prefix = etcd.prefix('churn');
    const reg = new EtcdLeaseRegistry({
      endpoints: etcd.endpoints,
      prefix,
      log: nullLogger,
      requestTimeoutMs: 5000,
    });
    stops.push(() => reg.close());
    const ac = new AbortController();
    stops.push(() => ac.abort());
    const from = String((await storeRevision(etcd)) + 1);
    const it = reg.watch(from, ac.signal)[Symbol.asyncIterator]();
    await put(prefix, 'first', 'x');
    const first = (await it.next()).value as RegistryBatch;
    expect(first.events).toHaveLength(1);
    // The consumer is busy now: 5000 puts over 50 keys.
    for (let i = 0; i < 5000; i += 50)
      await Promise.all(Array.from({ length: 50 }, (_, k) => put(prefix, `k${k}`, `v${i + k}`)));
    await new Promise((r) => setTimeout(r, 500));
    const batches: RegistryBatch[] = [];
    for (let keys = new Set<string>(); keys.size < 50;) {
      const b = (await it.next()).value as RegistryBatch;
      batches.push(b);
      for (const e of b.events) if (e.type === 'put') keys.add(e.entry.key);
    }
    const events = batches.flatMap((b) => b.events);
    // One response may have been taken as it came; everything after it is one batch, one event per key.
    expect(batches.length).toBeLessThanOrEqual(2);
    expect(events.length).toBeLessThan(120);
    const last = batches[batches.length - 1]!;
    const latest = new Map(
      last.events.map((e) => [
        e.type === 'put' ? e.entry.key : e.key,
        e.type === 'put' ? e.entry.value : null,
      ]),
    );
    expect(latest.get('k7')).toBe('v4957');
  });

  it('a batch of puts under one store lease costs one TTL lookup, not one per put', async () => {
    const prefix = etcd.prefix('ttl');
    await client.put(`${prefix}/config`, JSON.stringify(CONFIG));
    const m = managers.make(prefix);
    const ac = new AbortController();
    const rec = new WatchRecorder(m.watchLeases(null, ac.signal));
    stops.push(async () => {
      ac.abort();
      await rec.done.catch(() => {});
    });
    await rec.waitFor((e) => e.length >= 1);
    const id = await client.grant(60);
    stops.push(() => client.revoke(id).catch(() => {}));
    const before = m.etcdRequests;
    await client.putAll(
      Array.from({ length: 100 }, (_, i) => ({
        key: `${prefix}/subnets/10.5.${i}.0-24`,
        value: encodeLeaseAttrs(attrs(i)),
        lease: id,
      })),
    );
    await rec.waitFor((e) => e.length >= 101);
    expect(m.etcdRequests - before).toBe(1);
    const added = rec.events.slice(1);
    expect(added.every((e) => e.kind === 'added' && e.lease.expiration !== null)).toBe(true);
  });
});
