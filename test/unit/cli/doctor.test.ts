import { describe, expect, it } from 'vitest';
import {
  doctorFailed,
  probeTargets,
  runChecks,
  usesIpv6Underlay,
} from '../../../src/cli/doctor.js';
import type { PeerRow } from '../../../src/cli/peers.js';
import type { Lease } from '../../../src/lease/lease.js';
import { parseNetworkConfig } from '../../../src/subnet/config.js';
import type { Check, DoctorInput } from '../../../src/cli/doctor-check.js';
import { forwardPolicyChecks } from '../../../src/cli/doctor-firewall.js';
import type { LeaseRecord } from '../../../src/cli/etcd-view.js';
import type { HostFacts, NftState } from '../../../src/cli/host-view.js';
import { peerVerdicts } from '../../../src/cli/peers.js';
import { buildRuleset } from '../../../src/firewall/rules.js';
import type { NftObject } from '../../../src/firewall/nft.js';
import type { LinkInfo } from '../../../src/netlink/index.js';
import { previousSubnets } from '../../../src/lease/subnet-env.js';
import { CBR0, WEFT, config, healthyKernel, lease, leases, withKernel } from './fixtures.js';
import { CHECK_SCHEMA, validate } from './schema.js';

const record = (l: ReturnType<typeof lease>, over: Partial<LeaseRecord> = {}): LeaseRecord => ({
  key: l.key,
  lease: l,
  reserved: false,
  expiresIn: 86_000,
  leaseId: '7',
  modRevision: '5',
  createRevision: '5',
  problem: null,
  ...over,
});

/** What `nft -j list table ip weft` returns for weftd's default ruleset on h1. */
function listedTable(forward = true): NftObject[] {
  const rs = buildRuleset(
    {
      ipv4: { network: '10.5.0.0/16', subnet: '10.5.1.0/24' },
      ipv6: null,
      ipMasq: false,
      fullyRandom: true,
      forwardRules: true,
      encapPorts: [8472],
      uplinks: ['eth0'],
    },
    { v4: ['198.18.0.2'], v6: [] },
  );
  const t = rs.tables[0]!;
  const out: NftObject[] = [{ table: { family: 'ip', name: 'weft' } }];
  for (const s of t.sets)
    out.push({
      set: { family: 'ip', table: 'weft', name: s.name, type: s.type, elem: s.elements },
    });
  for (const c of t.counters)
    out.push({
      counter: {
        family: 'ip',
        table: 'weft',
        name: c,
        packets: c === 'encap_dropped' ? 7 : 0,
        bytes: 0,
      },
    });
  for (const c of t.chains) {
    if (!forward && c.name === 'forward') continue;
    out.push({
      chain: {
        family: 'ip',
        table: 'weft',
        name: c.name,
        type: c.type,
        hook: c.hook,
        prio: c.prio,
        policy: 'accept',
      },
    });
    c.comments.forEach((comment) =>
      out.push({ rule: { family: 'ip', table: 'weft', chain: c.name, comment } }),
    );
  }
  return out;
}

const ENV =
  'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n';

function input(
  over: Partial<DoctorInput> = {},
  host: Partial<HostFacts> = {},
  nft: Partial<NftState> = {},
): DoctorInput {
  const kernel = host.kernel ?? healthyKernel();
  const facts: HostFacts = {
    kernelRelease: '6.1.0-18-amd64',
    kernel,
    addrs: [
      { index: 2, cidr: '198.18.0.1/24' },
      { index: 5, cidr: '10.5.1.0/32' },
      { index: 7, cidr: '10.5.1.1/24' },
    ],
    sysctl: {
      'net.ipv4.ip_forward': '1',
      'net.ipv4.conf.all.rp_filter': '0',
      'net.ipv4.conf.weft.1.rp_filter': '0',
      'net.ipv4.conf.eth0.rp_filter': '2',
    },
    txChecksum: { 'weft.1': 'on' },
    conntrack: { count: 100, max: 1000 },
    ...host,
  };
  const own = lease(1);
  return {
    etcd: { reachable: true, latencyMs: 3, error: null },
    clock: { endpoint: 'http://e:2379', skewSeconds: 0.2, error: null },
    config,
    configError: null,
    records: leases.map((l) => record(l)),
    own: record(own),
    host: facts,
    hostError: null,
    nft: { weft4: listedTable(), weft6: null, forwardDrop: [], error: null, ...nft },
    subnetEnv: {
      path: '/run/flannel/subnet.env',
      text: ENV,
      parsed: previousSubnets(ENV),
      mtu: 1450,
      ipMasq: false,
      error: null,
    },
    health: { url: 'http://127.0.0.1:8081', healthz: 200, readyz: 200, error: null },
    peers: peerVerdicts({ config, own, leases, kernel }),
    probes: [
      { lease: '10.5.2.0-24', publicIp: '198.18.0.2', reachable: true, rttMs: 0.1 },
      { lease: '10.5.3.0-24', publicIp: '198.18.0.3', reachable: true, rttMs: 0.1 },
    ],
    ...over,
  };
}

const byStatus = (checks: Check[], s: Check['status']): string[] =>
  checks.filter((c) => c.status === s).map((c) => c.id);
const find = (checks: Check[], id: string): Check => {
  const c = checks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id} in ${checks.map((x) => x.id).join(', ')}`);
  return c;
};

/** The input with the kernel's link `name` changed by `patch` (a device or the bridge). */
const withLink = (name: string, patch: Partial<LinkInfo>) => (): DoctorInput =>
  input(
    {},
    {
      kernel: withKernel(
        (k) => (k.links = k.links.map((l) => (l.name === name ? { ...l, ...patch } : l))),
      ),
    },
  );

describe('doctor checks', () => {
  it('a healthy host passes every check', () => {
    const checks = runChecks(input());
    expect(byStatus(checks, 'fail')).toEqual([]);
    expect(byStatus(checks, 'warn')).toEqual([]);
    expect(doctorFailed(checks)).toBe(false);
    for (const c of checks) expect(validate(c, CHECK_SCHEMA)).toEqual([]);
    expect(checks.map((c) => c.id)).toEqual(
      expect.arrayContaining([
        'etcd',
        'clock',
        'config',
        'lease',
        'subnet.env',
        'weftd',
        'device:weft.1',
        'mtu:weft.1',
        'checksum:weft.1',
        'ip_forward',
        'rp_filter',
        'conntrack',
        'rules:ip',
        'peers',
        'underlay:198.18.0.2',
      ]),
    );
  });

  it.each<[string, () => DoctorInput, string, RegExp, RegExp]>([
    [
      'etcd down',
      () => input({ etcd: { reachable: false, latencyMs: null, error: 'ECONNREFUSED' } }),
      'etcd',
      /unreachable: ECONNREFUSED/,
      /endpoint health/,
    ],
    [
      'clock 400 s off',
      () => input({ clock: { endpoint: 'e', skewSeconds: 400, error: null } }),
      'clock',
      /400 s off/,
      /set-ntp/,
    ],
    [
      'no lease for this host',
      () => input({ own: null }),
      'lease',
      /no lease in etcd for this host \(subnet\.env says 10\.5\.1\.0\/24\)/,
      /restart weftd/,
    ],
    [
      'weftd down',
      () =>
        input({
          health: {
            url: 'http://127.0.0.1:8081',
            healthz: null,
            readyz: null,
            error: 'ECONNREFUSED',
          },
        }),
      'weftd',
      /does not answer/,
      /journalctl/,
    ],
    [
      'weftd not ready',
      () => input({ health: { url: 'u', healthz: 200, readyz: 503, error: null } }),
      'weftd',
      /not ready/,
      /journalctl/,
    ],
    [
      'subnet.env from an old lease',
      () => {
        const env = ENV.replace('10.5.1.1/24', '10.5.9.1/24');
        return input({
          subnetEnv: {
            path: 'p',
            text: env,
            parsed: previousSubnets(env),
            mtu: 1450,
            ipMasq: false,
            error: null,
          },
        });
      },
      'subnet.env',
      /FLANNEL_SUBNET is 10\.5\.9\.0\/24, the lease is 10\.5\.1\.0\/24/,
      /restart weftd/,
    ],
    [
      'device MTU wrong',
      withLink('weft.1', { mtu: 1400 }),
      'mtu:weft.1',
      /MTU is 1400, want 1450 \(uplink eth0 1500 − 50\)/,
      /ip link set dev weft\.1 mtu 1450/,
    ],
    [
      'bridge MTU above the overlay',
      withLink('cbr0', { mtu: 1500 }),
      'mtu:containers',
      /bridge cbr0 MTU 1500 exceeds/,
      /ip link set dev cbr0 mtu 1450/,
    ],
    [
      'device down',
      withLink('weft.1', { up: false }),
      'device:weft.1',
      /is down/,
      /ip link set dev weft\.1 up/,
    ],
    [
      'device MAC differs from the lease',
      withLink('weft.1', { mac: '02:99:00:00:00:01' }),
      'device:weft.1',
      /the lease publishes aa:00:00:00:00:01/,
      /ip link set dev weft\.1 address aa:00:00:00:00:01/,
    ],
    [
      'checksum bug kernel with offload on',
      () => input({}, { kernelRelease: '4.19.0-21-amd64' }),
      'checksum:weft.1',
      /4\.19\.0-21-amd64 < 5\.7/,
      /ethtool -K weft\.1 tx-checksum-ip-generic off/,
    ],
    [
      'ip_forward off',
      () => input({}, { sysctl: { 'net.ipv4.ip_forward': '0' } }),
      'ip_forward',
      /is 0/,
      /sysctl -w net\.ipv4\.ip_forward=1/,
    ],
    [
      'conntrack almost full',
      () => input({}, { conntrack: { count: 950, max: 1000 } }),
      'conntrack',
      /950\/1000 \(95 %\)/,
      /nf_conntrack_max=2000/,
    ],
    [
      'forward rules dropped',
      () => input({}, {}, { weft4: listedTable(false) }),
      'rules:ip',
      /chain forward is missing/,
      /restart weftd/,
    ],
    [
      'weft table deleted',
      () => input({}, {}, { weft4: null }),
      'rules:ip',
      /table ip weft is missing: no peer allowlist/,
      /nft list table ip weft/,
    ],
    [
      'peer FDB entry deleted',
      () => {
        const kernel = withKernel((k) => (k.fdb = k.fdb.filter((f) => f.dst !== '198.18.0.2')));
        return input(
          { peers: peerVerdicts({ config, own: lease(1), leases, kernel }) },
          { kernel },
        );
      },
      'peer:10.5.2.0-24/4:10.5.2.0/24',
      /missing: no FDB entry/,
      /bridge fdb replace/,
    ],
    [
      'peer unreachable on the underlay',
      () =>
        input({
          probes: [{ lease: '10.5.2.0-24', publicIp: '198.18.0.2', reachable: false, rttMs: null }],
        }),
      'underlay:198.18.0.2',
      /does not answer on the underlay/,
      /ip route get 198\.18\.0\.2/,
    ],
    [
      'the path to a peer drops full-size packets',
      () =>
        input({
          probes: [
            {
              lease: '10.5.2.0-24',
              publicIp: '198.18.0.2',
              reachable: true,
              rttMs: 0.1,
              mtuProbe: { size: 1500, ok: false },
            },
          ],
        }),
      'pmtu:198.18.0.2',
      /packets of 1500 bytes with DF do not reach 198\.18\.0\.2/,
      /tracepath -n 198\.18\.0\.2/,
    ],
    [
      'two leases with one public IP',
      () =>
        input({
          records: [
            ...leases.map((l) => record(l)),
            record({ ...lease(3), key: '10.5.4.0-24', subnet: '10.5.4.0/24' }),
          ],
        }),
      'duplicate:198.18.0.3',
      /holds 2 leases \(10\.5\.3\.0-24, 10\.5\.4\.0-24\)/,
      /etcdctl del/,
    ],
    [
      'two leases on one subnet (a flannel node, or two hosts racing in dual stack)',
      () =>
        input({
          records: [
            ...leases.map((l) => record(l)),
            record(
              { ...lease(2, { publicIp: '198.18.0.9' }), key: '10.5.2.0-24&fd05:0:0:9::-64' },
              { modRevision: '9', createRevision: '9' },
            ),
          ],
        }),
      'overlap:10.5.2.0-24:10.5.2.0-24&fd05:0:0:9::-64',
      /10\.5\.2\.0-24 \(198\.18\.0\.2\) and .* \(198\.18\.0\.9\) share 10\.5\.2\.0\/24/,
      /etcdctl del <prefix>\/subnets\/10\.5\.2\.0-24&fd05:0:0:9::-64 .*restart weftd on 198\.18\.0\.9/,
    ],
  ])('%s: the check fails and names the fix', (_name, make, id, message, fix) => {
    const checks = runChecks(make());
    const c = find(checks, id);
    expect(c.status).toBe('fail');
    expect(c.message).toMatch(message);
    expect(c.fixes.join('\n')).toMatch(fix);
    expect(doctorFailed(checks)).toBe(true);
  });

  it.each([
    ['vxlan', { Type: 'vxlan' }, /ICMP and UDP 8472\)/],
    ['vxlan', { Type: 'vxlan', Port: 4789 }, /ICMP and UDP 4789\)/],
    ['udp', { Type: 'udp' }, /ICMP and UDP 8285\)/],
    [
      'wireguard',
      { Type: 'wireguard', ListenPort: 51000 },
      /ICMP and UDP 51000 \(IPv6 underlay: 51821\)/,
    ],
    ['host-gw', { Type: 'host-gw' }, /ICMP and the pods' traffic itself/],
  ])(
    'an unreachable peer names the traffic the %s backend needs through firewalls (%j)',
    (type, raw, traffic) => {
      const c = find(
        runChecks(
          input({
            config: { ...config, backend: { type, raw } },
            probes: [
              { lease: '10.5.2.0-24', publicIp: '198.18.0.2', reachable: false, rttMs: null },
            ],
          }),
        ),
        'underlay:198.18.0.2',
      );
      expect(c.fixes.join('\n')).toMatch(traffic);
    },
  );

  it.each<[string, () => DoctorInput, string, RegExp]>([
    [
      'slow etcd',
      () => input({ etcd: { reachable: true, latencyMs: 900, error: null } }),
      'etcd',
      /slowly \(900 ms\)/,
    ],
    [
      'clock 5 s off',
      () => input({ clock: { endpoint: 'e', skewSeconds: -5, error: null } }),
      'clock',
      /-5 s off/,
    ],
    [
      'strict rp_filter',
      () =>
        input({}, { sysctl: { 'net.ipv4.ip_forward': '1', 'net.ipv4.conf.all.rp_filter': '1' } }),
      'rp_filter',
      /strict .* on weft\.1, eth0/,
    ],
    [
      'FORWARD policy drop elsewhere',
      () => input({}, {}, { forwardDrop: ['ip filter FORWARD'] }),
      'forward-policy:ip filter FORWARD',
      /drops forwarded packets by default/,
    ],
    [
      'stale peer entries',
      () =>
        input({
          peers: peerVerdicts({
            config,
            own: lease(1),
            leases: [lease(1), lease(2)],
            kernel: healthyKernel(),
          }),
        }),
      'peer:stale/4:10.5.3.0/24',
      /no lease holds this subnet/,
    ],
    [
      'UDP checksum errors received',
      () => input({}, { udpCsumErrors: 12 }),
      'udp-checksum',
      /12 UDP datagrams arrived with a bad checksum/,
    ],
    [
      'an invalid key in etcd',
      () =>
        input({
          records: [
            ...leases.map((l) => record(l)),
            { ...record(lease(2)), key: 'garbage', lease: null, problem: 'not a subnet key' },
          ],
        }),
      'invalid:garbage',
      /not a valid lease/,
    ],
    [
      'the lease names an address this host lacks (NAT --public-ip)',
      () => input({}, { addrs: [{ index: 7, cidr: '10.5.1.1/24' }] }),
      'public-ip',
      /publishes 198\.18\.0\.1 but no interface/,
    ],
  ])('%s: the check warns, doctor still passes', (_name, make, id, message) => {
    const checks = runChecks(make());
    const c = find(checks, id);
    expect(c.status).toBe('warn');
    expect(c.message).toMatch(message);
    expect(doctorFailed(checks)).toBe(false);
  });

  it('accepts weftd rules with masquerade when subnet.env says FLANNEL_IPMASQ=true', () => {
    const rs = buildRuleset({
      ipv4: { network: '10.5.0.0/16', subnet: '10.5.1.0/24' },
      ipv6: null,
      ipMasq: true,
      fullyRandom: false,
      forwardRules: true,
      encapPorts: [8472],
    });
    const t = rs.tables[0]!;
    const listed: NftObject[] = [
      ...t.sets.map((s) => ({ set: { name: s.name, type: s.type } }) as NftObject),
      ...t.counters.map((c) => ({ counter: { name: c } }) as NftObject),
    ].concat(
      t.chains.flatMap((c) => [
        {
          chain: { name: c.name, type: c.type, hook: c.hook, prio: c.prio, policy: 'accept' },
        } as NftObject,
        ...c.comments.map((comment) => ({ rule: { chain: c.name, comment } }) as NftObject),
      ]),
    );
    const env = ENV.replace('IPMASQ=false', 'IPMASQ=true');
    const checks = runChecks(
      input(
        {
          subnetEnv: {
            path: 'p',
            text: env,
            parsed: previousSubnets(env),
            mtu: 1450,
            ipMasq: true,
            error: null,
          },
        },
        {},
        { weft4: listed },
      ),
    );
    expect(find(checks, 'rules:ip')).toMatchObject({
      status: 'pass',
      message: expect.stringMatching(/masquerade/),
    });
  });

  it('reports the peer allowlist and its drop counter; a missing input chain fails', () => {
    expect(find(runChecks(input()), 'rules:ip')).toMatchObject({
      status: 'pass',
      message: expect.stringMatching(
        /peer allowlist: 1 address, 7 encapsulated packets from others dropped/,
      ),
    });
    const noInput = listedTable().filter(
      (o) => o['chain']?.['name'] !== 'input' && o['rule']?.['chain'] !== 'input',
    );
    expect(find(runChecks(input({}, {}, { weft4: noInput })), 'rules:ip')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/chain input is missing/),
    });
  });

  it('a host that cannot be inspected fails once and skips the kernel checks', () => {
    const checks = runChecks(input({ host: null, hostError: 'EPERM' }));
    expect(find(checks, 'host')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/EPERM/),
    });
    expect(checks.some((c) => c.id.startsWith('mtu:'))).toBe(false);
  });

  it('names a device an earlier weft backend left: failing when it routes into the network', () => {
    const tun: LinkInfo = { index: 9, name: 'weft0', kind: 'tun', mtu: 1472, mac: null, up: true };
    const opTun: LinkInfo = { ...tun, index: 10, name: 'tun7' };
    const addrs = [
      { index: 2, cidr: '198.18.0.1/24' },
      { index: 5, cidr: '10.5.1.0/32' },
      { index: 7, cidr: '10.5.1.1/24' },
      { index: 9, cidr: '10.5.1.0/32' },
      { index: 10, cidr: '10.99.0.1/32' },
    ];
    const net = {
      family: 4 as const,
      dst: '10.5.0.0/16',
      gateway: null,
      oif: 9,
      onlink: false,
      table: 254,
      protocol: 'STATIC',
      type: 'UNICAST',
    };
    const withTun = (routed: boolean): Check[] =>
      runChecks(
        input(
          {},
          {
            addrs,
            kernel: withKernel((k) => {
              k.links.push(tun, opTun);
              if (routed) k.routes.push(net);
            }),
          },
        ),
      );
    const routed = withTun(true);
    expect(find(routed, 'leftover:weft0')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(
        /^TUN device weft0 is left from an earlier weft backend .*the vxlan backend uses weft\.1\): its 1 route\(s\) into the cluster network \(10\.5\.0\.0\/16, …\) take traffic away from vxlan$/,
      ),
      fixes: [
        'systemctl restart weftd   # at its start weftd removes weft0 when it proves it its own',
        'ip link del weft0   # if it is still there after the restart',
      ],
    });
    // an operator's TUN (no weft address) and the configured device are not leftovers
    expect(routed.filter((c) => c.id.startsWith('leftover:')).map((c) => c.id)).toEqual([
      'leftover:weft0',
    ]);
    expect(find(withTun(false), 'leftover:weft0').status).toBe('warn');
    // the VXLAN device weftd runs (the VtepMAC its lease publishes) while the config says host-gw:
    // config-applied names that, and the device is not called a leftover
    const hostGw = runChecks(
      input({ config: { ...config, backend: { type: 'host-gw', raw: { Type: 'host-gw' } } } }),
    );
    expect(find(hostGw, 'config-applied').status).toBe('fail');
    expect(hostGw.filter((c) => c.id.startsWith('leftover:'))).toEqual([]);
    const otherMac = runChecks(
      input(
        { config: { ...config, backend: { type: 'host-gw', raw: { Type: 'host-gw' } } } },
        {
          kernel: withKernel(
            (k) =>
              (k.links = k.links.map((l) => (l === WEFT ? { ...l, mac: '02:00:00:00:00:99' } : l))),
          ),
        },
      ),
    );
    expect(find(otherMac, 'leftover:weft.1').status).toBe('fail');
  });

  it('uses the device MTU from Backend.MTU when set', () => {
    const checks = runChecks(
      input(
        { config: { ...config, backend: { type: 'vxlan', raw: { Type: 'vxlan', MTU: 1400 } } } },
        {
          kernel: withKernel(
            (k) =>
              (k.links = k.links.map((l) =>
                l === WEFT ? { ...l, mtu: 1350 } : l === CBR0 ? { ...l, mtu: 1350 } : l,
              )),
          ),
        },
      ),
    );
    expect(find(checks, 'mtu:containers')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/FLANNEL_MTU is 1450, want 1350/),
    });
  });

  it("FORWARD policy DROP (Docker) passes only with weft's WEFT-FWD accepting the network", () => {
    const st = (forward: string, weft: string): NftState => ({
      weft4: null,
      weft6: null,
      forwardDrop: ['ip filter FORWARD', 'inet fw forward'],
      iptables: { 4: { forward, weft }, 6: { forward: null, weft: null } },
      error: null,
    });
    const rules =
      '-N WEFT-FWD\n-A WEFT-FWD -s 10.5.0.0/16 -m comment --comment "weft forward" -j ACCEPT\n-A WEFT-FWD -d 10.5.0.0/16 -m comment --comment "weft forward" -j ACCEPT\n';
    const jump = '-P FORWARD DROP\n-A FORWARD -m comment --comment "weft forward" -j WEFT-FWD\n';
    const ok = forwardPolicyChecks(st(jump, rules), config);
    expect(ok.map((c) => [c.id, c.status])).toEqual([
      ['forward-policy:iptables', 'pass'],
      ['forward-policy:inet fw forward', 'warn'],
    ]);
    const noJump = forwardPolicyChecks(st('-P FORWARD DROP\n', ''), config)[0]!;
    expect(noJump).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/DROP and nothing jumps to WEFT-FWD/),
    });
    expect(noJump.fixes).toContain('iptables -I FORWARD 1 -s 10.5.0.0/16 -j ACCEPT');
    expect(forwardPolicyChecks(st(jump, rules.split('\n')[1]!), config)[0]!.status).toBe('fail');
    expect(forwardPolicyChecks(st('-P FORWARD ACCEPT\n', ''), config)[0]).toMatchObject({
      status: 'pass',
      message: 'iptables FORWARD policy accepts',
    });
  });

  it('dual stack: containers get the smaller (IPv6 underlay) MTU, each device its own, one UDP checksum warning', () => {
    const dual = { ...config, enableIPv6: true, ipv6Network: 'fd05::/48' };
    const dev6 = {
      ...WEFT,
      index: 6,
      name: 'weft-v6.1',
      mtu: 1430,
      vxlan: { ...WEFT.vxlan!, local: 'fd18::1' },
    };
    const env = ENV.replace('FLANNEL_MTU=1450', 'FLANNEL_MTU=1430');
    const k = withKernel((x) => {
      x.links = x.links.map((l) => (l === CBR0 ? { ...l, mtu: 1430 } : l));
      x.links.push(dev6);
    });
    const checks = runChecks(
      input(
        {
          config: dual,
          subnetEnv: {
            path: 'p',
            text: env,
            parsed: previousSubnets(env),
            mtu: 1430,
            ipMasq: false,
            error: null,
          },
          peers: [],
        },
        { kernel: k, udpCsumErrors: 5 },
      ),
    );
    expect(
      ['mtu:weft.1', 'mtu:weft-v6.1', 'mtu:containers'].map((id) => find(checks, id).status),
    ).toEqual(['pass', 'pass', 'pass']);
    // the host-wide UDP checksum counter is one warning, whatever the number of VXLAN devices
    expect(checks.filter((c) => c.id === 'udp-checksum')).toHaveLength(1);
    expect(find(checks, 'checksum:weft-v6.1').status).toBe('pass');
    expect(find(checks, 'mtu:weft-v6.1').message).toMatch(/1430 \(uplink eth0 1500 − 70\)/);
  });
});

describe('doctor underlay probes in dual stack', () => {
  const dual = (backend: string) =>
    parseNetworkConfig(
      JSON.stringify({
        Network: '10.5.0.0/16',
        EnableIPv6: true,
        IPv6Network: 'fd05::/48',
        Backend: JSON.parse(backend),
      }),
    );
  const row = (l: Lease, family: 4 | 6, verdict: PeerRow['verdict']): PeerRow => ({
    lease: l.key,
    family,
    subnet: family === 4 ? l.subnet! : l.subnet6!,
    publicIp: family === 4 ? l.attrs.publicIp : l.attrs.publicIpv6,
    vtepMac: null,
    route: null,
    neigh: null,
    fdb: null,
    verdict,
    reason: null,
    problems: [],
    fixes: [],
  });
  const l2: Lease = {
    ...lease(2, { publicIpv6: 'fd18::2' }),
    key: '10.5.2.0-24&fd05:0:0:2::-64',
    subnet6: 'fd05:0:0:2::/64',
  };
  const l3: Lease = {
    ...lease(3, { publicIpv6: 'ff02::1' }),
    key: '10.5.3.0-24&fd05:0:0:3::-64',
    subnet6: 'fd05:0:0:3::/64',
  };
  const own: Lease = { ...lease(1, { publicIpv6: 'fd18::1' }), subnet6: 'fd05:0:0:1::/64' };

  it("probes each programmed peer's PublicIPv6 when IPv6 runs over an IPv6 underlay", () => {
    // Before, only the IPv4 public IPs were probed: an IPv6 underlay dropping everything passed.
    const rows = [row(l2, 4, 'ok'), row(l2, 6, 'ok'), row(l3, 4, 'ok'), row(l3, 6, 'refused')];
    expect(probeTargets([l2, l3], rows, true)).toEqual([
      { lease: l2.key, publicIp: '198.18.0.2' },
      { lease: l3.key, publicIp: '198.18.0.3' },
      { lease: l2.key, publicIp: 'fd18::2' }, // l3's IPv6 family is refused: reported, not probed
    ]);
    expect(probeTargets([l2, l3], rows, false).map((t) => t.publicIp)).toEqual([
      '198.18.0.2',
      '198.18.0.3',
    ]);
  });

  it('knows which backends carry IPv6 over an IPv6 underlay', () => {
    expect(usesIpv6Underlay(dual('{"Type":"vxlan"}'), own)).toBe(true);
    expect(usesIpv6Underlay(dual('{"Type":"host-gw"}'), own)).toBe(true);
    expect(usesIpv6Underlay(dual('{"Type":"udp"}'), own)).toBe(false);
    for (const [mode, v6] of [
      ['separate', true],
      ['ipv6', true],
      ['ipv4', false],
      ['auto', false],
    ] as const)
      expect(usesIpv6Underlay(dual(`{"Type":"wireguard","Mode":"${mode}"}`), own)).toBe(v6);
    expect(usesIpv6Underlay(config, own)).toBe(false);
    expect(usesIpv6Underlay(null, own)).toBe(false);
  });
});
