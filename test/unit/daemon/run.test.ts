/**
 * runDaemon's orchestration with fakes for etcd, the backend and nft (pure step logic: order, retries,
 * exit codes). The real parts are proven end to end in test/e2e/weftd-*.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../../src/subnet/config.js';
import type { SubnetManager, NetworkConfig, AcquireOptions } from '../../../src/subnet/manager.js';
import type { Backend, BackendDeps, Network } from '../../../src/backend/backend.js';
import type { Lease } from '../../../src/lease/lease.js';
import { ConfigError, WeftError } from '../../../src/errors.js';
import { nullLogger } from '../../../src/log/logger.js';
import { createBackendRegistry } from '../../../src/daemon/backends.js';
import { createDaemonMetrics } from '../../../src/daemon/metrics.js';
import { parseOptions } from '../../../src/daemon/options.js';
import { EXIT, runDaemon, type DaemonDeps } from '../../../src/daemon/run.js';
import type { HostSnapshot } from '../../../src/daemon/uplink.js';
import type { NftRunner } from '../../../src/firewall/nft.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const host: HostSnapshot = {
  interfaces: [{ name: 'eth0', index: 2, mtu: 1500, addrs4: ['198.18.0.1'], addrs6: [] }],
  routes: [
    { family: 4, dst: '0.0.0.0', prefixLen: 0, gateway: '198.18.0.254', iface: 'eth0', metric: 0 },
  ],
};

const lease: Lease = {
  key: '10.5.7.0-24',
  subnet: '10.5.7.0/24',
  subnet6: null,
  attrs: { publicIp: '198.18.0.1', publicIpv6: null, backendType: 'fake' },
  expiration: new Date(Date.now() + 86_400_000),
};

interface World {
  events: string[];
  configs: (NetworkConfig | Error)[];
  keepLease?: (signal: AbortSignal) => Promise<void>;
  acquire?: AcquireOptions;
  /** clearLeftovers rejects with this (netlink failing at start). */
  leftoversFail?: Error;
}

function untilAbort(signal: AbortSignal): Promise<void> {
  return new Promise((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r())));
}

function setup(world: World, argv: string[] = []) {
  const subnetFile = join(dir, `s${++n}`, 'subnet.env');
  const options = parseOptions([`--subnet-file=${subnetFile}`, `--state-dir=${dir}`, ...argv], {});
  const controller = new AbortController();
  const subnets: SubnetManager = {
    name: 'fake',
    async getNetworkConfig() {
      const next = world.configs.length > 1 ? world.configs.shift()! : world.configs[0]!;
      world.events.push('config');
      if (next instanceof Error) throw next;
      return next;
    },
    acquireLease: async () => lease,
    keepLease: async (_l, signal) => {
      world.events.push('keepLease');
      await (world.keepLease ?? untilAbort)(signal);
    },
    watchLeases: () => {
      throw new Error('not used by the daemon');
    },
    close: async () => void world.events.push('close'),
  };
  const fake = (deps: BackendDeps): Backend => ({
    async registerNetwork(_config, acquire): Promise<Network> {
      world.events.push(`register ${deps.uplink.name} ${deps.uplink.publicIp}`);
      world.acquire = acquire;
      acquire.onAcquired?.(lease.key, '7587868312345');
      return {
        lease,
        mtu: 1450,
        encapPorts: [],
        peersOnUplink: false,
        deviceNames: [],
        ownsUplinkRoutes: false,
        run: async (signal) => {
          world.events.push('run');
          await untilAbort(signal);
          world.events.push('run end');
        },
      };
    },
  });
  const nft: NftRunner = {
    apply: async (script) =>
      void world.events.push(`nft ${script.includes('chain forward') ? 'fwd' : 'none'}`),
    listTable: async () => null,
  };
  const deps: DaemonDeps = {
    log: nullLogger,
    signal: controller.signal,
    createSubnetManager: () => subnets,
    backends: createBackendRegistry({ fake }),
    readHost: async () => host,
    nft,
    metrics: createDaemonMetrics({ processMetrics: false }),
    retryMs: 5,
    clearLeftovers: async (network) => {
      world.events.push(`leftovers keep [${network.deviceNames.join(',')}]`);
      if (world.leftoversFail) throw world.leftoversFail;
    },
  };
  return { options, deps, controller, subnetFile };
}

const cfg = (backend = 'fake'): NetworkConfig =>
  parseNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: backend } });

async function until(what: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(what()).toBe(true);
}

describe('runDaemon', () => {
  it('runs the steps in order, becomes ready, and leaves everything in place on SIGTERM', async () => {
    const world: World = {
      events: [],
      configs: [new ConfigError('absent', { code: 'E_CONFIG_NOT_FOUND' }), cfg()],
    };
    const { options, deps, controller, subnetFile } = setup(world);
    const done = runDaemon(options, deps);
    await until(() => world.events.includes('keepLease') && world.events.includes('run'));
    expect(readFileSync(subnetFile, 'utf8')).toBe(
      'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    );
    controller.abort();
    const res = await done;
    expect(res.exitCode).toBe(EXIT.ok);
    // an earlier backend's leftovers go after the new one registered, before its peer loop runs
    expect(world.events.slice(0, 5)).toEqual([
      'config',
      'config',
      'register eth0 198.18.0.1',
      'leftovers keep []',
      'nft fwd',
    ]);
    expect(world.events.indexOf('run')).toBeGreaterThan(3);
    expect(world.events).toContain('run end');
    expect(world.events.at(-1)).toBe('close');
    expect(existsSync(subnetFile)).toBe(true);
  });

  it('a failed look for leftovers is no reason to stop: weftd runs the new backend', async () => {
    const world: World = {
      events: [],
      configs: [cfg()],
      leftoversFail: new Error('netlink timeout'),
    };
    const { options, deps, controller } = setup(world);
    const done = runDaemon(options, deps);
    await until(() => world.events.includes('run'));
    controller.abort();
    expect((await done).exitCode).toBe(EXIT.ok);
  });

  it('passes the previous subnet.env subnet to the backend for reuse', async () => {
    const world: World = { events: [], configs: [cfg()] };
    const s = setup(world);
    const first = runDaemon(s.options, s.deps);
    await until(() => world.events.includes('run'));
    s.controller.abort();
    await first;
    await until(() => existsSync(join(dir, 'subnet-lease')));
    const again = setup(world, [`--subnet-file=${s.subnetFile}`]);
    const second = runDaemon(again.options, again.deps);
    await until(
      () => world.acquire !== undefined && world.events.filter((e) => e === 'run').length === 2,
    );
    // and the etcd lease the first run recorded in the state dir (proof of ownership after an IP change)
    expect(world.acquire).toMatchObject({
      previousSubnet: '10.5.7.0/24',
      previousSubnet6: null,
      previousLeaseId: '7587868312345',
    });
    again.controller.abort();
    expect((await second).exitCode).toBe(0);
  });

  it('an invalid config exits 3 before anything is programmed', async () => {
    const world: World = {
      events: [],
      configs: [new ConfigError('network config field Network = "x" is invalid: must be a CIDR')],
    };
    const { options, deps, subnetFile } = setup(world);
    const res = await runDaemon(options, deps);
    expect(res.exitCode).toBe(EXIT.config);
    expect(res.message).toMatch(
      /invalid network config: network config field Network .* nothing was programmed/,
    );
    expect(world.events).toEqual(['config', 'close']);
    expect(existsSync(subnetFile)).toBe(false);
  });

  it('an unknown backend type exits 3 before the backend is created', async () => {
    const world: World = { events: [], configs: [cfg('ipsec')] };
    const { options, deps } = setup(world);
    const res = await runDaemon(options, deps);
    expect(res.exitCode).toBe(EXIT.config);
    expect(res.message).toMatch(/unknown backend type: ipsec/);
    expect(world.events).toEqual(['config', 'close']);
  });

  it('bad etcd client options (TLS file, auth) exit 2 naming the flags', async () => {
    const world: World = { events: [], configs: [cfg()] };
    const { options, deps } = setup(world);
    const res = await runDaemon(options, {
      ...deps,
      createSubnetManager: () => {
        throw new WeftError('E_ETCD_TLS', 'etcd TLS certFile /nope.pem cannot be read: ENOENT');
      },
    });
    expect(res.exitCode).toBe(EXIT.usage);
    expect(res.message).toBe(
      'etcd client options: etcd TLS certFile /nope.pem cannot be read: ENOENT; check the --etcd-* flags',
    );
  });

  it('no usable interface exits 4', async () => {
    const world: World = { events: [], configs: [cfg()] };
    const { options, deps } = setup(world, ['--iface=wlan9']);
    const res = await runDaemon(options, deps);
    expect(res.exitCode).toBe(EXIT.iface);
    expect(res.message).toMatch(/--iface=wlan9/);
  });

  it('E_LEASE_LOST stops the watch and exits 5 with a clear message', async () => {
    const world: World = {
      events: [],
      configs: [cfg()],
      keepLease: async () => {
        await new Promise((r) => setTimeout(r, 20));
        throw new WeftError('E_LEASE_LOST', 'subnet 10.5.7.0/24 is now held by 198.18.0.9');
      },
    };
    const { options, deps } = setup(world);
    const res = await runDaemon(options, deps);
    expect(res.exitCode).toBe(EXIT.leaseLost);
    expect(res.message).toMatch(/lease lost: subnet 10.5.7.0\/24 is now held by 198.18.0.9/);
    expect(world.events).toContain('run end');
  });

  it('a signal while waiting for the config exits 0', async () => {
    const world: World = {
      events: [],
      configs: [new ConfigError('absent', { code: 'E_CONFIG_NOT_FOUND' })],
    };
    const { options, deps, controller } = setup(world);
    const done = runDaemon(options, deps);
    await until(() => world.events.length >= 3);
    controller.abort();
    expect((await done).exitCode).toBe(0);
  });
});
