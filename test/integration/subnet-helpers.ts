/** Shared pieces of the subnet integration tests (not a test file itself). */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startEtcd, type EtcdFixture } from '../helpers/etcd.js';
import {
  createEtcdSubnetManager,
  type EtcdSubnetManager,
  type EtcdSubnetManagerOptions,
} from '../../src/subnet/etcd-manager.js';
import type { LeaseAttrs, LeaseEvent } from '../../src/lease/lease.js';
import { nullLogger, type Logger } from '../../src/log/logger.js';

export const attrs = (n: number, extra: Partial<LeaseAttrs> = {}): LeaseAttrs => ({
  publicIp: `198.18.${Math.floor(n / 256)}.${n % 256}`,
  publicIpv6: null,
  backendType: 'vxlan',
  ...extra,
});

/** Creates managers and closes them all at the end of each test. */
export class Managers {
  private readonly all: EtcdSubnetManager[] = [];
  constructor(private readonly endpoints: () => string[]) {}
  make(
    prefix: string,
    opts: Partial<EtcdSubnetManagerOptions> = {},
    log: Logger = nullLogger,
  ): EtcdSubnetManager {
    const m = createEtcdSubnetManager({
      endpoints: this.endpoints(),
      prefix,
      log,
      requestTimeoutMs: 5000,
      ...opts,
    });
    this.all.push(m);
    return m;
  }
  async closeAll(): Promise<void> {
    await Promise.all(this.all.splice(0).map((m) => m.close()));
  }
}

/** Clean-ups a test registers; run after it, last first. */
export type Stops = Array<() => Promise<void> | void>;

/**
 * The set-up every subnet integration file shares: one etcd for the file (`start`, default a plain
 * http one) stopped after its last test, the managers its tests make and the `stops` they register,
 * both undone after each test. `etcd` stands for the fixture `start` returns once it has run (before
 * the first test), so the tests use it as the fixture itself.
 */
export function useSubnetEtcd(start: () => Promise<EtcdFixture> = () => startEtcd()): {
  etcd: EtcdFixture;
  managers: Managers;
  stops: Stops;
} {
  let fixture: EtcdFixture | undefined;
  const started = (): EtcdFixture => {
    if (!fixture) throw new Error('useSubnetEtcd: etcd is started in beforeAll, before any test');
    return fixture;
  };
  const etcd = new Proxy({} as EtcdFixture, { get: (_, key) => Reflect.get(started(), key) });
  const managers = new Managers(() => started().endpoints);
  const stops: Stops = [];
  beforeAll(async () => {
    fixture = await start();
  });
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s();
    await managers.closeAll();
  });
  afterAll(async () => {
    await managers.closeAll();
    await fixture?.stop();
  });
  return { etcd, managers, stops };
}

export async function putConfig(etcd: EtcdFixture, prefix: string, config: unknown): Promise<void> {
  await etcd.etcdctl(['put', `${prefix}/config`, JSON.stringify(config)]);
}

export async function etcdLeaseCount(etcd: EtcdFixture): Promise<number> {
  const out = await etcd.etcdctl(['lease', 'list']);
  const m = /found (\d+) leases/.exec(out);
  if (!m) throw new Error(`unexpected etcdctl lease list output: ${out}`);
  return Number(m[1]);
}

/** Live etcd lease IDs as lower-case hex without leading zeros. */
export async function etcdLeaseIds(etcd: EtcdFixture): Promise<Set<string>> {
  const out = await etcd.etcdctl(['lease', 'list']);
  return new Set(
    out
      .split('\n')
      .slice(1)
      .map((l) => l.trim())
      .filter(Boolean)
      // etcdctl prints %016x (leading zeros); normalise to plain lower-case hex
      .map((hex) => BigInt(`0x${hex}`).toString(16)),
  );
}

export async function storeRevision(etcd: EtcdFixture): Promise<number> {
  const out = await etcd.etcdctl(['get', '/weft-test-revision-probe', '-w', 'json']);
  return Number((JSON.parse(out) as { header: { revision: number } }).header.revision);
}

/** Pulls batches from a watch into `events` until `stop` says enough or the time runs out. */
export class WatchRecorder {
  readonly events: LeaseEvent[] = [];
  private waiters: Array<() => void> = [];
  readonly done: Promise<void>;
  constructor(iterable: AsyncIterable<LeaseEvent[]>) {
    this.done = (async () => {
      for await (const batch of iterable) {
        this.events.push(...batch);
        for (const w of this.waiters.splice(0)) w();
      }
    })();
  }
  async waitFor(pred: (events: LeaseEvent[]) => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.events)) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `watch condition not met in ${timeoutMs} ms; events: ${JSON.stringify(this.summary())}`,
        );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
  summary(): string[] {
    return this.events.map((e) =>
      e.kind === 'snapshot'
        ? `snapshot:${e.leases
            .map((l) => l.key)
            .sort()
            .join(',')}`
        : `${e.kind}:${e.lease.key}`,
    );
  }
}

/** A TCP proxy in front of etcd that the test can cut (drop connections, refuse new ones) and restore. */
export class CuttableProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private cut = false;
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}
  async start(): Promise<void> {
    this.server = createServer((client) => {
      if (this.cut) return void client.destroy();
      const upstream = connect(this.target.port, this.target.host);
      this.sockets.add(client).add(upstream);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
  }
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  disconnect(): void {
    this.cut = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
  reconnect(): void {
    this.cut = false;
  }
  async stop(): Promise<void> {
    this.disconnect();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }
}
