/**
 * weftd's lifecycle (docs/design.md C12, docs/flannel-compat.md §11) in named steps:
 *   options → etcd → config → interface/public IP → backend device + lease → rules → subnet.env →
 *   ready → watch (network.run) + keepLease + firewall resync.
 * One AbortSignal (SIGTERM/SIGINT) stops everything; nothing is released on the way out: the lease,
 * the device, routes, neighbours, FDB entries and firewall rules stay (the dataplane survives the
 * daemon, the next start reconciles). Returns an exit code instead of exiting (main.ts exits).
 */
import { AbortedError, WeftError, describeError, hasCode, isRetryable } from '../errors.js';
import { EXIT, exitFor, type DaemonResult } from './exit-codes.js';
import { rateLimited, type Logger } from '../log/logger.js';
import type { Lease, LeaseEvent } from '../lease/lease.js';
import type { Network, Uplink } from '../backend/backend.js';
import { withoutSecrets } from '../backend/backend-config.js';
import type { AcquireOptions, NetworkConfig, SubnetManager } from '../subnet/manager.js';
import { sleep } from '../subnet/sleep.js';
import { lookupBackend, type BackendRegistry } from './backends.js';
import { Firewall } from '../firewall/firewall.js';
import type { IptablesRunner } from '../firewall/iptables-forward.js';
import type { NftRunner } from '../firewall/nft.js';
import type { RulesInput } from '../firewall/rules.js';
import { PeerAllowlist, tapLeaseEvents, type AllowlistScope } from './peer-allowlist.js';
import { startHealthServer, type HealthServer } from './health.js';
import type { startCniServer, CniServer } from './cni-server.js';
import type { DaemonMetrics } from './metrics.js';
import type { DaemonOptions } from './options.js';
import type { ServiceNotifier } from './sd-notify.js';
import {
  readSubnetEnv,
  subnetEnvDrift,
  writeSubnetEnv,
  type PreviousSubnets,
  type SubnetEnvValues,
} from './subnet-env.js';
import {
  selectUplink,
  uplinkAddressMoved,
  uplinkMtuChanged,
  type HostSnapshot,
  type UplinkRequest,
} from './uplink.js';
import { readLeaseOwner, writeLeaseOwner } from './lease-owner.js';
import { configChanges } from './config-watch.js';
import { forwarderMetricSamples, type UdpNetwork } from '../backend-udp/index.js';

export { EXIT, exitFor, type DaemonResult } from './exit-codes.js';

/** How long weftd waits at start for tentative IPv6 addresses (default DAD: 1 s per address). */
const DAD_WAIT_MS = 10_000;
/** How often subnet.env is checked against what weftd wrote (seconds; a read of ~100 bytes). */
const SUBNET_FILE_CHECK_S = 5;

export interface DaemonDeps {
  readonly log: Logger;
  /** Aborted by SIGTERM/SIGINT. */
  readonly signal: AbortSignal;
  readonly createSubnetManager: (options: DaemonOptions, log: Logger) => SubnetManager;
  readonly backends: BackendRegistry;
  readonly readHost: () => Promise<HostSnapshot>;
  readonly nft: NftRunner;
  /** iptables fallback for forward rules on hosts whose FORWARD policy drops (optional). */
  readonly iptables?: IptablesRunner;
  readonly metrics: DaemonMetrics;
  /** The CNI plugin's socket server (cni-server.ts); absent = not served (unit tests). */
  readonly startCniServer?: typeof startCniServer;
  /** Delay between config reads while the config is absent or etcd unreachable (default 1000). */
  readonly retryMs?: number;
  /**
   * Start-up checks: no other weftd on this host (E_ALREADY_RUNNING, instance-lock.ts), no flannel
   * leftovers (E_FLANNEL_LEFTOVERS; docs/migration-from-flannel.md).
   */
  readonly checkHost?: () => Promise<void>;
  /** systemd notifications (READY=1, STATUS=, STOPPING=1; docs/systemd.md), if started by systemd. */
  readonly notify?: ServiceNotifier;
  /**
   * Removes what an earlier weft backend of another type or identity left on this host
   * (src/backend/leftovers.ts), once `network` is registered and before its peer loop runs; absent:
   * nothing is looked for (unit tests).
   */
  readonly clearLeftovers?: (
    network: Network,
    config: NetworkConfig,
    uplink: Uplink,
  ) => Promise<unknown>;
  /** Releases what the deps hold (e.g. netlink sockets) after the daemon stopped. */
  readonly dispose?: () => void | Promise<void>;
}

/** The running daemon; `ready` is what /readyz reports. */
export class Daemon {
  ready = false;
  lease: Lease | null = null;
  uplink: Uplink | null = null;
  private uplinkRequest: UplinkRequest | null = null;
  /** The network config weftd runs (read once, at start). */
  private config: NetworkConfig | null = null;
  private readonly servers: (HealthServer | CniServer)[] = [];
  private readonly log: Logger;
  private readonly noisy: Logger;

  constructor(
    private readonly options: DaemonOptions,
    private readonly deps: DaemonDeps,
  ) {
    this.log = deps.log;
    this.noisy = rateLimited(deps.log, 30_000, 3);
  }

  /** Step: the previous subnet.env, for reusing the same subnet (hostile file: validated). */
  async readPrevious(): Promise<PreviousSubnets | null> {
    const prev = await readSubnetEnv(this.options.subnetFile);
    if (prev && prev.problems.length > 0) {
      this.log.warn('ignoring invalid parts of the previous subnet file', {
        file: this.options.subnetFile,
        problems: prev.problems,
      });
    }
    return prev;
  }

  /** Step: /healthz, /readyz, /metrics (flannel starts it before reading the config). */
  async startServers(): Promise<void> {
    const { healthzIp, healthzPort, metricsPort } = this.options;
    const ports = [...new Set([healthzPort, metricsPort].filter((p) => p > 0))];
    for (const port of ports) {
      const srv = await startHealthServer({
        host: healthzIp,
        port,
        isReady: () => this.ready,
        registry: this.deps.metrics.registry,
      });
      this.servers.push(srv);
      this.log.info('health server listening', { address: `${healthzIp}:${srv.address.port}` });
    }
    // The CNI plugin's fast path (cni-server.ts); DEL must work before the config is there too.
    const { cniSocket } = this.options;
    const cni =
      cniSocket && this.deps.startCniServer
        ? await this.deps.startCniServer({
            path: cniSocket,
            log: this.log.child({ component: 'cni' }),
          })
        : null;
    if (cni) this.servers.push(cni);
  }

  /** Step: `<prefix>/config`, retried every second while absent or etcd is unreachable. */
  async loadNetworkConfig(subnets: SubnetManager, signal: AbortSignal): Promise<NetworkConfig> {
    for (;;) {
      try {
        const config = await subnets.getNetworkConfig(signal);
        this.log.info('network config loaded', {
          config: withoutSecrets(config.raw),
          backend: config.backend.type,
        });
        return config;
      } catch (err) {
        if (signal.aborted) throw new AbortedError();
        if (hasCode(err, 'E_CONFIG_NOT_FOUND')) {
          this.noisy.warn('network config not found in etcd: waiting for it', {
            key: `${this.options.etcdPrefix}/config`,
          });
          this.deps.notify?.status(
            `waiting for the network config ${this.options.etcdPrefix}/config`,
          );
        } else if (isRetryable(err) || hasCode(err, 'E_ETCD_UNAVAILABLE')) {
          this.deps.metrics.etcdError('get_config');
          this.noisy.warn('cannot read the network config: retrying', {
            error: describeError(err),
          });
          this.deps.notify?.status(`waiting for etcd: ${describeError(err)}`);
        } else {
          throw err;
        }
      }
      await sleep(this.deps.retryMs ?? 1000, signal);
    }
  }

  /**
   * Step: the uplink and public addresses (uplink.ts). An interface whose IPv6 addresses are all still
   * in DAD (tentative: added at boot a second ago, and not usable as a source yet) is waited for, up to
   * DAD_WAIT_MS, instead of exiting 4 at once.
   */
  async chooseUplink(request: UplinkRequest, signal: AbortSignal): Promise<Uplink> {
    for (let waited = 0; ; waited += 500) {
      const snap = await this.deps.readHost();
      try {
        return selectUplink(snap, request);
      } catch (err) {
        const inDad = snap.interfaces.some(
          (i) => i.addrs6.length === 0 && i.unfit6?.some((a) => a.endsWith(' (tentative)')),
        );
        if (!hasCode(err, 'E_INTERFACE') || !inDad || waited >= DAD_WAIT_MS) throw err;
        if (waited === 0)
          this.log.info('waiting for IPv6 duplicate address detection to finish', {
            error: describeError(err),
          });
        await sleep(500, signal);
      }
    }
  }

  /** Step: register the network (device, then lease), retrying while etcd is unreachable. */
  async registerNetwork(
    config: NetworkConfig,
    uplink: Uplink,
    subnets: SubnetManager,
    prev: PreviousSubnets | null,
    signal: AbortSignal,
  ): Promise<Network> {
    const factory = lookupBackend(this.deps.backends, config.backend.type);
    const backend = factory({
      subnets,
      uplink,
      log: this.log.child({ backend: config.backend.type }),
      stateDir: this.options.stateDir,
    });
    const { stateDir } = this.options;
    const acquire: AcquireOptions = {
      previousSubnet: prev?.subnet ?? null,
      previousSubnet6: prev?.subnet6 ?? null,
      previousLeaseId: prev ? await readLeaseOwner(stateDir) : null,
      onAcquired: (key, leaseId) => void writeLeaseOwner(stateDir, key, leaseId, this.log),
    };
    let delay = 500;
    for (;;) {
      try {
        return await backend.registerNetwork(config, acquire, signal);
      } catch (err) {
        if (signal.aborted) throw new AbortedError();
        if (!isRetryable(err)) throw err;
        this.deps.metrics.etcdError('register_network');
        this.noisy.warn('registering the network failed: retrying', {
          error: describeError(err),
          inMs: delay,
        });
        await sleep(delay, signal);
        delay = Math.min(delay * 2, 10_000);
      }
    }
  }

  /** The firewall inputs for this host's lease, the backend's encapsulation ports and the uplink. */
  rulesInput(
    config: NetworkConfig,
    lease: Lease,
    network?: Pick<Network, 'encapPorts' | 'peersOnUplink'>,
    uplink?: Pick<Uplink, 'name'>,
  ): RulesInput {
    return {
      ipv4:
        config.enableIPv4 && config.network && lease.subnet
          ? { network: config.network, subnet: lease.subnet }
          : null,
      ipv6:
        config.enableIPv6 && config.ipv6Network && lease.subnet6
          ? { network: config.ipv6Network, subnet: lease.subnet6 }
          : null,
      ipMasq: this.options.ipMasq,
      fullyRandom: !this.options.ipMasqFullyRandomDisable,
      forwardRules: this.options.iptablesForwardRules,
      encapPorts: network?.encapPorts ?? [],
      peersOnUplink: network?.peersOnUplink ?? false,
      uplinks: uplink ? [uplink.name] : [],
    };
  }

  async run(): Promise<DaemonResult> {
    const { signal, metrics } = this.deps;
    const stop = new AbortController();
    const onStop = (): void => stop.abort();
    signal.addEventListener('abort', onStop, { once: true });
    if (signal.aborted) stop.abort();
    let subnets: SubnetManager | null = null;
    try {
      const prev = await this.readPrevious();
      await this.deps.checkHost?.();
      subnets = this.deps.createSubnetManager(
        this.options,
        this.log.child({ component: 'subnet' }),
      );
      await this.startServers();
      const config = await this.loadNetworkConfig(subnets, stop.signal);
      lookupBackend(this.deps.backends, config.backend.type); // fail before touching the kernel
      this.config = config;
      this.uplinkRequest = {
        iface: this.options.iface,
        ifaceRegex: this.options.ifaceRegex,
        ifaceCanReach: this.options.ifaceCanReach,
        publicIp: this.options.publicIp,
        publicIpv6: this.options.publicIpv6,
        ipv4: config.enableIPv4,
        ipv6: config.enableIPv6,
      };
      const uplink = await this.chooseUplink(this.uplinkRequest, stop.signal);
      this.uplink = uplink;
      this.log.info('using interface', { ...uplink });
      const firewall = new Firewall(
        this.deps.nft,
        rateLimited(this.log.child({ component: 'firewall' }), 60_000, 3),
        metrics,
        this.deps.iptables,
      );
      // The peer allowlist follows the lease events the backend sees (README "Security").
      const allowlist = new PeerAllowlist();
      let scope: AllowlistScope | null = null;
      let graceTimer: ReturnType<typeof setTimeout> | undefined;
      let allowed = new Set<string>();
      const onLeaseBatch = (batch: readonly LeaseEvent[]): Promise<void> | undefined => {
        allowlist.observe(batch);
        if (!scope) return undefined;
        const peers = allowlist.addresses(scope);
        const update = firewall.setPeers(peers, peers.complete).catch((err: unknown) =>
          this.noisy.warn('updating the peer allowlist failed: the resync retries', {
            error: describeError(err),
          }),
        );
        // a removed lease leaves the set when its grace ends (unless it came back meanwhile)
        const next = allowlist.nextExpiryInMs();
        clearTimeout(graceTimer);
        if (next !== null && !stop.signal.aborted)
          graceTimer = setTimeout(() => void onLeaseBatch([]), next + 10);
        // A new peer's address is in the set before the backend programs it, so its first packets
        // (a WireGuard handshake, a VXLAN frame) are not dropped here; bounded, so a stuck nft
        // cannot hold up the dataplane. Batches that add no address (renewals) do not wait.
        const now = new Set([...peers.v4, ...peers.v6]);
        const grows = [...now].some((a) => !allowed.has(a));
        allowed = now;
        return grows
          ? Promise.race([update, sleep(2000, stop.signal).catch(() => undefined)])
          : undefined;
      };
      stop.signal.addEventListener('abort', () => clearTimeout(graceTimer), { once: true });
      const network = await this.registerNetwork(
        config,
        uplink,
        tapLeaseEvents(subnets, onLeaseBatch),
        prev,
        stop.signal,
      );
      const udp = network as Partial<UdpNetwork>;
      if (typeof udp.forwarderStats === 'function') {
        // the UDP forwarder's counters (packets, drops by reason, route failures) on /metrics
        const stats = udp.forwarderStats.bind(network);
        metrics.watchSamples(() => forwarderMetricSamples(stats()));
      }
      const lease = network.lease;
      this.lease = lease;
      metrics.setLeaseState('acquired', lease.expiration);
      this.log.info('lease acquired', {
        key: lease.key,
        subnet: lease.subnet,
        subnet6: lease.subnet6,
        mtu: network.mtu,
      });
      // The new backend's devices are up and its lease held; its peer loop has programmed nothing
      // yet. An earlier backend's devices and routes go now, so none of their routes wins over the
      // ones the loop programs (a udp/wireguard TUN's network route already catches the traffic).
      await this.deps.clearLeftovers?.(network, config, uplink).catch((err: unknown) =>
        this.log.warn('cannot look for the devices and routes of an earlier weft backend', {
          error: describeError(err),
        }),
      );
      scope = { config, uplink, own: lease };
      await firewall.apply(this.rulesInput(config, lease, network, uplink));
      const becomeReady = (): void => {
        this.ready = true;
        metrics.setReady(true);
        this.log.info('weftd is ready');
        this.deps.notify?.ready(
          `ready: ${[lease.subnet, lease.subnet6].filter(Boolean).join(' ')} via ${uplink.name}, ${config.backend.type}`,
        );
      };
      const env: SubnetEnvValues = {
        network: config.enableIPv4 ? config.network : null,
        subnet: config.enableIPv4 ? lease.subnet : null,
        ipv6Network: config.enableIPv6 ? config.ipv6Network : null,
        subnet6: config.enableIPv6 ? lease.subnet6 : null,
        mtu: network.mtu,
        ipMasq: this.options.ipMasq,
      };
      // Written before ready; a write that fails (disk full, read-only /run) is retried while the
      // dataplane runs on, instead of a restart loop that systemd ends by giving up on weftd.
      const writing = (await this.writeSubnetFile(env))
        ? null
        : this.retrySubnetFile(env, stop.signal).then(becomeReady);
      if (!writing) becomeReady();
      return await this.supervise(network, subnets, lease, firewall, stop, writing, env);
    } catch (err) {
      if (stop.signal.aborted && (hasCode(err, 'E_ABORTED') || signal.aborted)) {
        return { exitCode: EXIT.ok, message: 'stopped before becoming ready' };
      }
      return exitFor(err);
    } finally {
      this.deps.notify?.stopping();
      this.ready = false;
      metrics.setReady(false);
      stop.abort();
      signal.removeEventListener('abort', onStop);
      await this.shutdown(subnets);
    }
  }

  /** Step: subnet.env; false when it could not be written (E_IO: logged, the caller retries). */
  async writeSubnetFile(env: SubnetEnvValues): Promise<boolean> {
    const file = this.options.subnetFile;
    try {
      await writeSubnetEnv(file, env);
      this.log.info('subnet file written', { file });
      return true;
    } catch (err) {
      if (!hasCode(err, 'E_IO')) throw err;
      this.noisy.error(
        'cannot write the subnet file: retrying; peers stay programmed, but weftd is not ready and the CNI plugin cannot add containers until it is written',
        { file, error: describeError(err), fix: 'free space or make its directory writable' },
      );
      this.deps.notify?.status(`cannot write ${file}: ${describeError(err)}; retrying`);
      return false;
    }
  }

  /** Retries writeSubnetFile (1 s doubling to 30 s) until it succeeds; rejects on abort. */
  async retrySubnetFile(env: SubnetEnvValues, signal: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      await sleep(Math.min(1000 * 2 ** attempt, 30_000), signal);
      if (await this.writeSubnetFile(env)) return;
    }
  }

  /**
   * Every SUBNET_FILE_CHECK_S (or --resync-period when shorter), once written: subnet.env changed under
   * weftd (another host's subnet, junk, removed, something else at the path) is written again, so the
   * CNI plugin does not number containers from a subnet this host does not hold until the next restart.
   */
  async keepSubnetFile(env: SubnetEnvValues, signal: AbortSignal): Promise<void> {
    const file = this.options.subnetFile;
    for (;;) {
      await sleep(Math.min(this.options.resyncPeriod, SUBNET_FILE_CHECK_S) * 1000, signal);
      const problem = await subnetEnvDrift(file, env);
      if (problem === null) continue;
      this.noisy.warn('the subnet file was changed by another process: writing it again', {
        file,
        problem,
      });
      await this.writeSubnetFile(env);
    }
  }

  /** Step: watch + keep the lease + firewall resync until a signal or a fatal error. */
  private async supervise(
    network: Network,
    subnets: SubnetManager,
    lease: Lease,
    firewall: Firewall,
    stop: AbortController,
    writing: Promise<void> | null,
    env: SubnetEnvValues,
  ): Promise<DaemonResult> {
    let fatal: unknown = null;
    const fail = (what: string) => (err: unknown) => {
      if (stop.signal.aborted && hasCode(err, 'E_ABORTED')) return;
      if (fatal === null) {
        fatal =
          err instanceof WeftError
            ? err
            : new WeftError('E_INTERNAL', `${what} failed`, { cause: err });
        this.log.error(`${what} failed: stopping`, { error: describeError(err) });
      }
      stop.abort();
    };
    const onRenewed = (l: Lease): void => {
      this.lease = l;
      this.deps.metrics.setLeaseState('acquired', l.expiration);
      this.log.info('lease renewed', {
        key: l.key,
        expiration: l.expiration?.toISOString() ?? null,
      });
    };
    /** A task that runs until the stop: ending before it, or failing, stops weftd. */
    const untilStop = (what: string, task: Promise<void>): Promise<void> =>
      task.then(() => {
        if (!stop.signal.aborted)
          fail(what)(new WeftError('E_INTERNAL', `the ${what} stopped unexpectedly`));
      }, fail(what));
    const tasks = [
      untilStop('backend', network.run(stop.signal)),
      untilStop('lease keeper', subnets.keepLease(lease, stop.signal, onRenewed)),
      firewall.runResync(this.options.iptablesResync, stop.signal).catch(fail('firewall resync')),
      ...(writing ? [writing.catch(fail('subnet file'))] : []),
      (writing ?? Promise.resolve())
        .then(() => this.keepSubnetFile(env, stop.signal))
        .catch(fail('subnet file check')),
      this.watchUplinkAddress(stop.signal).catch(fail('uplink address check')),
      this.watchConfig(subnets, stop.signal).catch(() => undefined), // ends on abort
    ];
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve();
      stop.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    this.log.info('stopping: the lease, device, routes and rules stay in place');
    this.deps.notify?.stopping();
    await Promise.race([Promise.allSettled(tasks), sleep(10_000, new AbortController().signal)]);
    if (fatal !== null) {
      if (hasCode(fatal, 'E_LEASE_LOST')) this.deps.metrics.setLeaseState('lost', null);
      return exitFor(fatal);
    }
    return { exitCode: EXIT.ok, message: 'exiting cleanly' };
  }

  /**
   * Every `--resync-period`: the uplink's address replaced by another (pitfalls A1) rejects
   * with E_INTERFACE, so weftd exits 4 and its supervisor restarts it onto the new address, keeping the
   * subnet; the dataplane stays meanwhile. An address just gone (none instead) is waited out, and a
   * move the restart could not follow (`--iface` naming the old IP) is logged, not a crash loop.
   * A changed uplink MTU is logged once per change with the fix (a restart); weftd does not exit for
   * it (a flapping MTU must not restart weftd over and over).
   */
  private async watchUplinkAddress(signal: AbortSignal): Promise<void> {
    let toldMtu: string | null = null;
    for (;;) {
      await sleep(this.options.resyncPeriod * 1000, signal);
      const snap = await this.deps.readHost().catch(() => null);
      const mtu = this.uplink && snap ? uplinkMtuChanged(this.uplink, snap) : null;
      if (mtu !== null && mtu !== toldMtu)
        this.log.warn(
          `the uplink's MTU changed (${mtu}); the devices' MTU and FLANNEL_MTU in subnet.env were derived from the old one at the start (unless the backend's MTU option is set): restart weftd to apply it, then re-create the containers started before (their interfaces keep the old MTU)`,
          { uplink: this.uplink?.name },
        );
      toldMtu = mtu;
      const moved = this.uplink && snap ? uplinkAddressMoved(this.uplink, snap) : null;
      if (moved === null || !snap || !this.uplinkRequest) continue;
      // Only when a restart would choose the interface again (not when --iface names the old IP).
      const again = ((): Uplink | null => {
        try {
          return selectUplink(snap, this.uplinkRequest!);
        } catch {
          return null;
        }
      })();
      if (again?.name === this.uplink?.name) {
        throw new WeftError(
          'E_INTERFACE',
          `the uplink's address changed (${moved}): the tunnel and the lease still use the old one; exiting so that the restart (systemd: Restart=on-failure) publishes the new one and keeps the subnet`,
        );
      }
      this.noisy.error(
        `the uplink's address changed (${moved}), but a restart would not choose that interface again: fix --iface / --iface-regex / --public-ip and restart weftd`,
      );
    }
  }

  /** Every `--resync-period`: the config in etcd against the one weftd runs (config-watch.ts). */
  private async watchConfig(subnets: SubnetManager, signal: AbortSignal): Promise<void> {
    let told = '';
    for (;;) {
      await sleep(this.options.resyncPeriod * 1000, signal);
      let now: NetworkConfig | null = null;
      let invalid: string | null = null;
      try {
        now = await subnets.getNetworkConfig(signal);
      } catch (err) {
        // unreachable or absent: said by the lease keeper; invalid: nobody else reads it now
        if (hasCode(err, 'E_CONFIG_INVALID')) invalid = describeError(err);
      }
      if (invalid !== null) {
        if (invalid !== told)
          this.log.warn(
            'the network config in etcd is now invalid; weftd keeps running the config it started with (peers stay programmed), but no weftd can start on it (exit 3): fix it with weftctl config set',
            { error: invalid },
          );
        told = invalid;
        continue;
      }
      if (!now || !this.config) continue;
      const changes = configChanges(this.config, now);
      const key = changes.join('; ');
      if (key !== told && changes.length > 0) {
        this.log.warn(
          'the network config in etcd changed; weftd keeps running the config it started with (peers stay programmed): restart weftd on every host to apply it, hosts on different configs do not reach each other',
          { changes },
        );
      }
      told = key;
    }
  }

  private async shutdown(subnets: SubnetManager | null): Promise<void> {
    await Promise.allSettled(this.servers.map((s) => s.close()));
    this.servers.length = 0;
    if (subnets)
      await subnets
        .close()
        .catch((err: unknown) =>
          this.log.warn('closing the etcd client failed', { error: describeError(err) }),
        );
  }
}

/** Runs weftd until a signal or a fatal error; never calls process.exit. */
export async function runDaemon(options: DaemonOptions, deps: DaemonDeps): Promise<DaemonResult> {
  return new Daemon(options, deps).run();
}
