/**
 * weftd and weftctl agree on hostile leases: the same leases go through a real backend (vxlan, host-gw,
 * udp, wireguard) on the recording FakeNetlink, and through `weftctl peers`' verdicts and `weftctl
 * doctor`'s checks over the kernel state weftd left there. weftctl must show exactly the leases weftd
 * refused as refused, with weftd's reason; every other peer must be ok (weftctl expects exactly what
 * weftd programmed, nothing stale); no fix weftctl prints may re-add an entry for a refused lease;
 * doctor probes only the peers weftd programs, and expects the devices, MTUs and FLANNEL_MTU weftd made.
 */
import { TEST_MACHINE_ID, useStateDir } from '../helpers/state-dir.js';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { hostGwBackendFactory } from '../../src/backend-hostgw/index.js';
import { udpBackendFactory } from '../../src/backend-udp/index.js';
import { MemoryForwarder } from '../fakes/memory-forwarder.js';
import { MemoryWgDevice } from '../fakes/memory-wg-device.js';
import { wireguardBackendFactory } from '../../src/backend-wireguard/index.js';
import { deriveVtepMac } from '../../src/backend-vxlan/mac.js';
import { vxlanBackendFactory } from '../../src/backend-vxlan/index.js';
import { peerVerdicts } from '../../src/cli/peers.js';
import { programmedPeers, probeTargets, runChecks } from '../../src/cli/doctor.js';
import type { Check } from '../../src/cli/doctor-check.js';
import { traceOverlay, type TraceResult } from '../../src/cli/commands/trace.js';
import { formatSubnetEnv, previousSubnets } from '../../src/lease/subnet-env.js';
import type { Lease, LeaseAttrs } from '../../src/lease/lease.js';
import { nullLogger } from '../../src/log/logger.js';
import {
  MemorySubnets,
  testNetworkConfig,
  testUplink,
} from '../integration/backend-memory-subnets.js';
import { FakeNetlink } from '../fakes/fake-netlink.js';
import { PEER_SCHEMA, validate } from './cli/schema.js';

const { dir, machineId } = useStateDir('weft-agree-unit-');

const tick = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));
const OURS = '198.18.0.1';
const ourMac = deriveVtepMac(TEST_MACHINE_ID, OURS, 1, 4);

const raw = (subnet: string, attrs: LeaseAttrs, expiresInMs: number | null = null): Lease => ({
  key: subnet.replace('/', '-'),
  subnet,
  subnet6: null,
  attrs,
  expiration: expiresInMs === null ? null : new Date(Date.now() + expiresInMs),
});

function vx(n: number, publicIp: string, data: unknown = { VNI: 1, VtepMAC: mac(n) }): LeaseAttrs {
  return { publicIp, publicIpv6: null, backendType: 'vxlan', backendData: data };
}
function hg(publicIp: string): LeaseAttrs {
  return { publicIp, publicIpv6: null, backendType: 'host-gw' };
}
function udp(publicIp: string): LeaseAttrs {
  return { publicIp, publicIpv6: null, backendType: '' };
}
const KEY = (n: number): string => Buffer.alloc(32, n).toString('base64');
function wg(n: number, publicIp: string, key: string = KEY(n)): LeaseAttrs {
  return { publicIp, publicIpv6: null, backendType: 'wireguard', backendData: { PublicKey: key } };
}
function mac(n: number): string {
  return `0e:00:00:00:00:${n.toString(16).padStart(2, '0')}`;
}

/** Hostile leases every backend must refuse (subnet and address checks). */
function hostile(attrs: (n: number, ip: string) => LeaseAttrs): Lease[] {
  return [
    raw('10.5.1.0/25', attrs(20, '198.18.0.20')), // inside our own subnet
    raw('10.5.0.0/16', attrs(22, '198.18.0.22')), // the whole network
    raw('10.5.30.0/23', attrs(23, '198.18.0.23')), // not SubnetLen long
    raw('10.5.40.0/24', attrs(40, '127.0.0.1')),
    raw('10.5.41.0/24', attrs(41, '224.0.0.5')),
    raw('10.5.42.0/24', attrs(42, '198.18.0.255')), // directed broadcast of the uplink's network
    raw('10.5.43.0/24', attrs(43, '0.0.0.7')),
  ];
}

async function run(
  type: 'vxlan' | 'host-gw' | 'udp' | 'wireguard',
  before: readonly Lease[],
  after: readonly Lease[],
): Promise<{
  refusedByWeftd: Map<string, string[]>;
  rows: ReturnType<typeof peerVerdicts>;
  checks: Check[];
  probed: string[];
  /** weftctl trace from our container to the first address of every peer lease, by lease key. */
  traces: Map<string, TraceResult>;
  wgDevices: MemoryWgDevice[];
}> {
  const fake = new FakeNetlink();
  const eth0 = fake.addLink('eth0');
  if (type === 'udp') fake.addLink('weft0', { kind: 'tun', up: false });
  if (type === 'wireguard') fake.addLink('weft-wg', { kind: 'tun', up: false });
  const wgDevices: MemoryWgDevice[] = [];
  const wgNames: string[] = [];
  fake.addrs.push({ index: eth0.index, cidr: `${OURS}/24` });
  const config = testNetworkConfig(type);
  const subnets = new MemorySubnets(config);
  for (const l of before) subnets.put(l);
  const refusedByWeftd = new Map<string, string[]>();
  const uplink = testUplink({ index: eth0.index });
  const deps = {
    subnets: subnets.manager(),
    uplink,
    log: nullLogger,
    stateDir: dir,
  };
  const opts = {
    netlink: fake,
    resyncMs: 3_600_000,
    removalGraceMs: 0,
    observer: {
      refused: (key: string, reasons: readonly string[]) =>
        reasons.length > 0 ? refusedByWeftd.set(key, [...reasons]) : refusedByWeftd.delete(key),
    },
  };
  const backend: Backend =
    type === 'vxlan'
      ? vxlanBackendFactory({ ...opts, machineIdPath: machineId })(deps)
      : type === 'host-gw'
        ? hostGwBackendFactory(opts)(deps)
        : type === 'udp'
          ? udpBackendFactory({
              ...opts,
              startForwarder: (req) =>
                MemoryForwarder.start({ tunFd: 3, port: req.port, mtu: req.mtu, localSubnets: [] }),
            })(deps)
          : wireguardBackendFactory({
              ...opts,
              startDevice: (req) => {
                const d = new MemoryWgDevice(req);
                wgDevices.push(d);
                wgNames.push(req.name);
                return d.asDevice();
              },
            })(deps);
  const ac = new AbortController();
  const network = await backend.registerNetwork(config, {}, ac.signal);
  const done = network.run(ac.signal);
  try {
    await tick();
    for (const l of after) subnets.put(l); // through the incremental path
    await tick();
  } finally {
    ac.abort();
    await done;
  }
  const leases = [...subnets.leases.values()];
  const kernel = {
    links: [...fake.links.values()],
    routes: [...fake.routes.values()],
    neighs: [...fake.neighs.values()],
    fdb: [...fake.fdb.values()],
  };
  // what weftctl reads from /metrics: the engine's peers as `<device>|<key>|<endpoint>`
  const live =
    type === 'wireguard'
      ? {
          programmed: new Set(
            wgDevices.flatMap((d, i) =>
              [...d.peers.values()].map(
                (p) =>
                  `${wgNames[i]}|${p.publicKey}|${p.endpoint ? `${p.endpoint.address}:${p.endpoint.port}` : ''}`,
              ),
            ),
          ),
        }
      : {};
  const rows = peerVerdicts({
    config,
    own: network.lease,
    leases,
    kernel,
    addrs: fake.addrs,
    ...live,
  });
  // doctor over the same facts: subnet.env as weftd writes it, every probed peer answering
  const env = formatSubnetEnv({
    network: config.network,
    subnet: network.lease.subnet,
    ipv6Network: null,
    subnet6: null,
    mtu: network.mtu,
    ipMasq: false,
  });
  const record = (l: Lease) => ({
    key: l.key,
    lease: l,
    reserved: l.expiration === null,
    expiresIn: 86_000,
    leaseId: '7',
    modRevision: '5',
    createRevision: '5',
    problem: null,
  });
  const probed = probeTargets(programmedPeers(leases, network.lease, rows));
  const checks = runChecks({
    etcd: { reachable: true, latencyMs: 1, error: null },
    clock: { endpoint: 'e', skewSeconds: 0, error: null },
    config,
    configError: null,
    records: leases.map(record),
    own: record(network.lease),
    host: {
      kernelRelease: '6.1.0',
      kernel,
      addrs: fake.addrs,
      sysctl: { 'net.ipv4.ip_forward': '1' },
      txChecksum: {},
      conntrack: null,
    },
    hostError: null,
    nft: null,
    subnetEnv: {
      path: 'subnet.env',
      text: env,
      parsed: previousSubnets(env),
      mtu: network.mtu,
      ipMasq: false,
      error: null,
    },
    health: null,
    peers: rows,
    probes: probed.map((t) => ({ ...t, reachable: true, rttMs: 0.1 })),
  });
  const ours = network.lease.subnet!.replace(/\.0\/\d+$/, '.2');
  const traces = new Map(
    leases
      .filter((l) => l.key !== network.lease.key && l.subnet)
      .map((l) => [
        l.key,
        traceOverlay({
          src: ours,
          dst: l.subnet!.replace(/\.0\/\d+$/, '.2'),
          config,
          leases,
          own: network.lease,
          kernel,
          addrs: fake.addrs,
          ...live,
        }),
      ]),
  );
  return { refusedByWeftd, rows, checks, probed: probed.map((t) => t.lease), traces, wgDevices };
}

function expectAgreement(r: Awaited<ReturnType<typeof run>>, healthy: readonly string[]): void {
  const refusedRows = r.rows.filter((row) => row.verdict === 'refused');
  expect(new Set(refusedRows.map((row) => row.lease))).toEqual(new Set(r.refusedByWeftd.keys()));
  for (const row of refusedRows) {
    expect(r.refusedByWeftd.get(row.lease!)).toContain(row.reason);
    expect(validate(row, PEER_SCHEMA)).toEqual([]);
  }
  // weftctl expects exactly what weftd programmed: every other peer ok, nothing stale
  const others = r.rows.filter((row) => row.verdict !== 'refused');
  expect(others.map((row) => [row.lease, row.verdict])).toEqual(healthy.map((k) => [k, 'ok']));
  // never a fix that re-adds an entry for a refused lease (peers nor doctor)
  const refusedSubnets = refusedRows.map((row) => row.subnet);
  for (const fix of [...r.rows, ...r.checks].flatMap((row) => row.fixes))
    for (const s of refusedSubnets) expect(fix).not.toMatch(new RegExp(`replace ${s}`));
  // doctor: the refused leases fail as refused with weftd's reason, every other peer passes
  const peerChecks = r.checks.filter((c) => c.id.startsWith('peer'));
  const failed = peerChecks.filter((c) => c.status !== 'pass');
  expect(new Set(failed.map((c) => /^peer:(.*)\/[46]:/.exec(c.id)?.[1]))).toEqual(
    new Set(r.refusedByWeftd.keys()),
  );
  for (const c of failed) {
    const key = /^peer:(.*)\/[46]:/.exec(c.id)![1]!;
    expect(c.status).toBe('fail');
    expect(c.message).toMatch(/: refused: /);
    expect(r.refusedByWeftd.get(key)!.some((reason) => c.message.includes(reason))).toBe(true);
  }
  // trace: a refused lease's packets are dropped because weftd refuses it, never for a missing entry;
  // a healthy peer's go through
  for (const key of healthy) expect(r.traces.get(key)?.verdict, key).toBe('ok');
  for (const [key, reasons] of r.refusedByWeftd) {
    const t = r.traces.get(key);
    if (!t || t.dst.lease !== key) continue; // its address lies in another lease's subnet
    expect(t.verdict).toBe('dropped');
    expect(t.missing.join('\n')).toMatch(/^weftd refuses the lease /);
    expect(reasons.some((reason) => t.missing[0]!.includes(reason))).toBe(true);
  }
  // doctor probes only the peers weftd programs (never a refused lease's hostile address)
  expect(new Set(r.probed)).toEqual(new Set(healthy));
  // and expects the devices, their MTUs and FLANNEL_MTU exactly as weftd made them
  const devices = r.checks.filter((c) => /^(device|mtu)/.test(c.id));
  expect(devices.map((c) => c.id)).toContain('mtu:containers');
  expect(devices.filter((c) => c.status !== 'pass')).toEqual([]);
}

describe('weftd and weftctl agree on hostile leases', () => {
  it('vxlan: hostile subnets, addresses, backend data, VNI, our VTEP MAC and a copied live MAC', async () => {
    const r = await run(
      'vxlan',
      [
        raw('10.5.2.0/24', vx(2, '198.18.0.2')),
        ...hostile((n, ip) => vx(n, ip)),
        raw('10.5.50.0/24', vx(50, '198.18.0.50', { VNI: 'x', VtepMAC: mac(50) })),
        raw('10.5.51.0/24', vx(51, '198.18.0.51', { VNI: 7, VtepMAC: mac(51) })),
        raw('10.5.52.0/24', vx(52, '198.18.0.52', { VNI: 1, VtepMAC: ourMac })),
      ],
      [
        raw('10.5.3.0/24', vx(3, '198.18.0.66', { VNI: 1, VtepMAC: mac(2) })), // copies host 2's MAC
        raw('10.5.4.0/24', vx(4, '198.18.0.2', { VNI: 1, VtepMAC: mac(2) })), // host 2's 2nd lease
        raw('10.5.44.0/24', vx(44, OURS)), // our own public IP
      ],
    );
    expect([...r.refusedByWeftd.keys()].sort()).toEqual(
      [
        '10.5.0.0-16',
        '10.5.1.0-25',
        '10.5.3.0-24',
        '10.5.30.0-23',
        '10.5.40.0-24',
        '10.5.41.0-24',
        '10.5.42.0-24',
        '10.5.43.0-24',
        '10.5.44.0-24',
        '10.5.50.0-24',
        '10.5.51.0-24',
        '10.5.52.0-24',
      ].sort(),
    );
    expectAgreement(r, ['10.5.2.0-24', '10.5.4.0-24']);
  });

  it('host-gw: hostile subnets and addresses, and a peer that is not on-link', async () => {
    const r = await run(
      'host-gw',
      [raw('10.5.2.0/24', hg('198.18.0.2')), ...hostile((_n, ip) => hg(ip))],
      [raw('10.5.45.0/24', hg('198.19.0.5')), raw('10.5.44.0/24', hg(OURS))],
    );
    expect(r.refusedByWeftd.size).toBe(9);
    expectAgreement(r, ['10.5.2.0-24']);
  });

  it("udp: hostile subnets and addresses, and a newcomer for a live peer's subnet", async () => {
    const r = await run(
      'udp',
      [raw('10.5.2.0/24', udp('198.18.0.2')), ...hostile((_n, ip) => udp(ip))],
      [
        raw('10.5.44.0/24', udp(OURS)),
        {
          key: '10.5.2.0-24&fd05:0:0:2::-64', // a second key for the live peer's subnet
          subnet: '10.5.2.0/24',
          subnet6: 'fd05:0:0:2::/64',
          attrs: udp('198.18.0.66'),
          expiration: new Date(Date.now() + 10 * 86_400_000),
        },
      ],
    );
    expect(r.refusedByWeftd.has('10.5.2.0-24&fd05:0:0:2::-64')).toBe(true);
    // udp does not refuse an on-link broadcast address (the forwarder's socket cannot send to it
    // without SO_BROADCAST): weftd routes it, and weftctl agrees
    expectAgreement(r, ['10.5.2.0-24', '10.5.42.0-24']);
  });

  it('wireguard: hostile subnets, addresses and keys, and a copied live key or subnet', async () => {
    const r = await run(
      'wireguard',
      [
        // the live peer's lease expires first: only being programmed keeps its key and subnet
        raw('10.5.2.0/24', wg(2, '198.18.0.2'), 3_600_000),
        ...hostile((n, ip) => wg(n, ip)),
        raw('10.5.50.0/24', wg(50, '198.18.0.50', 'not-a-key')),
        raw('10.5.51.0/24', wg(51, '198.18.0.51', Buffer.alloc(32).toString('base64'))),
      ],
      [
        raw('10.5.44.0/24', wg(44, OURS)), // our own public IP
        raw('10.5.3.0/24', wg(3, '198.18.0.66', KEY(2)), 86_400_000), // copies host 2's live key
        {
          key: '10.5.2.0-24&fd05:0:0:2::-64', // a second key for the live peer's subnet
          subnet: '10.5.2.0/24',
          subnet6: 'fd05:0:0:2::/64',
          attrs: wg(60, '198.18.0.60'),
          expiration: new Date(Date.now() + 10 * 86_400_000),
        },
        raw('10.5.4.0/24', wg(4, '198.18.0.4')),
      ],
    );
    expect([...r.refusedByWeftd.keys()].sort()).toEqual(
      [
        '10.5.0.0-16',
        '10.5.1.0-25',
        '10.5.2.0-24&fd05:0:0:2::-64',
        '10.5.3.0-24',
        '10.5.30.0-23',
        '10.5.40.0-24',
        '10.5.41.0-24',
        '10.5.43.0-24',
        '10.5.44.0-24',
        '10.5.50.0-24',
        '10.5.51.0-24',
      ].sort(),
    );
    expect(r.refusedByWeftd.get('10.5.3.0-24')).toEqual([
      expect.stringMatching(/lease 10\.5\.2\.0-24 already holds its public key/),
    ]);
    // like udp, the engine's socket cannot send to an on-link broadcast: routed, and weftctl agrees
    expectAgreement(r, ['10.5.2.0-24', '10.5.42.0-24', '10.5.4.0-24']);
    // the device holds exactly the planned peers, each with a handshake started when added
    const [dev] = r.wgDevices;
    expect(new Map([...dev!.peers].map(([k, p]) => [k, p.allowedIps]))).toEqual(
      new Map([
        [KEY(2), ['10.5.2.0/24']],
        [KEY(4), ['10.5.4.0/24']],
        [KEY(42), ['10.5.42.0/24']],
      ]),
    );
    expect(dev!.peers.get(KEY(4))?.endpoint).toEqual({ address: '198.18.0.4', port: 51820 });
    expect(new Set(dev!.initiated)).toEqual(new Set([KEY(2), KEY(4), KEY(42)]));
  });
});
