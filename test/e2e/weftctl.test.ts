/**
 * weftctl end to end: three simulated hosts with a real weftd each (vxlan), etcd on the underlay, one
 * container on each of h1 and h2; weftctl (the built bin/weftctl.js) runs inside h1's netns.
 *
 *   [h1 weftd, weft.1, c1]   [h2 weftd, weft.1, c2]   [h3 weftd, weft.1]
 *        └──── eth0 198.18.0.i on br0 (underlay netns: etcd on 198.18.0.254) ────┘
 *
 * First the healthy cluster: status, leases, peers, doctor, trace, ping and config/lease management
 * match what the test set up. Then weftd on h1 is stopped (its dataplane stays, nothing repairs it) and
 * the test breaks things on purpose — deletes h2's FDB entry, changes h3's neighbour MAC, drops weft's
 * forward rules, sets a wrong MTU — and doctor/peers/trace must name each fault and exit non-zero;
 * finally etcd is stopped. Every `--json` document is validated against the schemas in
 * test/unit/cli/schema.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimContainer } from '../helpers/netns.js';
import { nsRun, stopChild, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { previousSubnets } from '../../src/lease/subnet-env.js';
import {
  CONFIG_SCHEMA,
  DOCTOR_SCHEMA,
  checkedJson,
  LEASES_SCHEMA,
  LEASE_ACTION_SCHEMA,
  PEERS_SCHEMA,
  PING_SCHEMA,
  STATUS_SCHEMA,
  TRACE_SCHEMA,
  type Schema,
} from '../unit/cli/schema.js';
import {
  REPO,
  createCluster,
  hostAddr4,
  runWeftctl,
  startWeftds,
  subnetsOf,
  type Cluster,
  type Weftd,
} from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft');
useLeakCheck();

interface CtlResult {
  code: number;
  json: Record<string, unknown>;
  stdout: string;
  stderr: string;
}

describe.skipIf(!runnable)('weftctl on a 3-host vxlan cluster', () => {
  let c: Cluster;
  let d: Weftd[];
  let c1: SimContainer;
  let c2: SimContainer;
  const subnet = (i: number): string => subnetsOf(d[i]!).subnet;

  /** Runs weftctl in `host`'s netns with the cluster's etcd flags; parses --json output. */
  async function ctl(i: number, args: string[], schema?: Schema): Promise<CtlResult> {
    const r = await runWeftctl(c, d[i]!, args);
    return { ...r, json: checkedJson(args, r.stdout, schema) };
  }

  async function vtepMac(i: number): Promise<string> {
    const out = await nsRun(d[i]!.host.netns, 'ip', ['-j', 'link', 'show', 'weft.1']);
    return (JSON.parse(out.stdout) as { address: string }[])[0]!.address;
  }

  beforeAll(async () => {
    if (!existsSync(join(REPO, 'dist/cli/run.js')))
      throw new Error('dist/cli/run.js is missing: run `npm run build` first');
    c = await createCluster(3);
    d = await startWeftds(c, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    // containers wired like the bridge CNI plugin would: MTU from subnet.env
    const mk = async (i: number): Promise<SimContainer> => {
      const env = previousSubnets(readFileSync(d[i]!.subnetFile, 'utf8'));
      const mtu = Number(/FLANNEL_MTU=(\d+)/.exec(readFileSync(d[i]!.subnetFile, 'utf8'))?.[1]);
      return c.topo.addContainer(d[i]!.host, {
        cidr: `${hostAddr4(env.subnet!, 2)}/24`,
        gateway: hostAddr4(env.subnet!, 1),
        mtu,
      });
    };
    c1 = await mk(0);
    c2 = await mk(1);
    // every daemon has seen every other lease (watch events) before the tests look
    for (const i of [0, 1])
      await waitFor(
        `h${i + 1} to program both peers`,
        async () => (await ctl(i, ['peers'])).code === 0,
        15_000,
        200,
      );
  });
  afterAll(async () => {
    await c?.destroy();
  });

  it('status shows this host: lease, device, peers, weftd ready, etcd, subnet.env', async () => {
    const r = await ctl(0, ['status', '--json'], STATUS_SCHEMA);
    expect(r.json['problems']).toEqual([]);
    expect(r.code).toBe(0);
    const lease = r.json['lease'] as Record<string, unknown>;
    expect(lease['subnet']).toBe(subnet(0));
    expect(lease['publicIp']).toBe('198.18.0.1');
    expect(lease['vtepMac']).toBe(await vtepMac(0));
    expect(lease['expiresInSeconds']).toBeGreaterThan(3600);
    expect(r.json['peers']).toEqual({ leases: 2, ok: 2, faults: 0 });
    expect(r.json['weftd']).toMatchObject({ healthz: 200, readyz: 200 });
    expect(r.json['etcd']).toMatchObject({ reachable: true });
    expect(r.json['devices']).toEqual([
      expect.objectContaining({ name: 'weft.1', up: true, mtu: 1450, vni: 1, port: 8472 }),
    ]);
    expect(r.json['subnetEnv']).toMatchObject({ exists: true, subnet: subnet(0), mtu: 1450 });
    const human = await ctl(0, ['status']);
    expect(human.stdout).toMatch(new RegExp(`lease:\\s+${subnet(0).replace(/\./g, '\\.')}`));
    expect(human.stdout).toContain('healthy, ready');
    expect(human.stdout).not.toContain('\x1b['); // no colours when stdout is not a TTY
  });

  it('leases lists every host with its public IP, backend and VTEP MAC', async () => {
    const r = await ctl(2, ['leases', '--json'], LEASES_SCHEMA);
    expect(r.code).toBe(0);
    const leases = r.json['leases'] as Record<string, unknown>[];
    expect(leases).toHaveLength(3);
    for (let i = 0; i < 3; i++) {
      const l = leases.find((x) => x['subnet'] === subnet(i))!;
      expect(l).toMatchObject({
        publicIp: `198.18.0.${i + 1}`,
        backendType: 'vxlan',
        vtepMac: await vtepMac(i),
        vni: 1,
        reserved: false,
      });
      expect(l['expiresInSeconds']).toBeGreaterThan(0);
    }
    const table = await ctl(2, ['leases']);
    expect(table.stdout).toMatch(/SUBNET\s+PUBLIC IP\s+BACKEND\s+VTEP MAC\s+EXPIRES IN/);
    expect(table.stdout).toContain('3 keys, 0 reserved');
  });

  it('peers: every other host ok as the kernel sees it', async () => {
    const r = await ctl(0, ['peers', '--json'], PEERS_SCHEMA);
    expect(r.code).toBe(0);
    const peers = r.json['peers'] as Record<string, unknown>[];
    expect(peers.map((p) => p['subnet']).sort()).toEqual([subnet(1), subnet(2)].sort());
    for (const p of peers) {
      expect(p['verdict']).toBe('ok');
      expect(p['route']).toMatch(/via .* dev weft\.1 onlink/);
      expect(p['fdb']).toMatch(/dst 198\.18\.0\.[23]/);
    }
  });

  it('doctor passes on a healthy host', async () => {
    const r = await ctl(0, ['doctor', '--json'], DOCTOR_SCHEMA);
    const checks = r.json['checks'] as { id: string; status: string; message: string }[];
    expect(checks.filter((x) => x.status === 'fail')).toEqual([]);
    expect(r.code).toBe(0);
    const ids = checks.map((x) => x.id);
    for (const id of [
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
      'forward-policy:iptables',
      'rules:ip',
      'peers',
      'underlay:198.18.0.2',
      'underlay:198.18.0.3',
    ])
      expect(ids).toContain(id);
  });

  it("Docker's FORWARD policy DROP: weftd adds WEFT-FWD and doctor accepts it", async () => {
    const ns = d[0]!.host.netns;
    await nsRun(ns, 'iptables', ['-P', 'FORWARD', 'DROP']);
    await waitFor(
      'weftd to add its WEFT-FWD jump',
      async () => (await nsRun(ns, 'iptables', ['-S', 'FORWARD'])).stdout.includes('-j WEFT-FWD'),
      10_000,
    );
    const r = await ctl(0, ['doctor', '--json', '--no-probe'], DOCTOR_SCHEMA);
    const checks = r.json['checks'] as { id: string; status: string; message: string }[];
    expect(checks.find((x) => x.id === 'forward-policy:iptables')).toMatchObject({
      status: 'pass',
      message: expect.stringMatching(/DROP; weft's WEFT-FWD accepts 10\.5\.0\.0\/16/),
    });
    expect(r.code).toBe(0);
  });

  it('trace c1 → c2: route, neighbour, FDB and the outer VXLAN header', async () => {
    const r = await ctl(0, ['trace', c1.ip, c2.ip, '--json'], TRACE_SCHEMA);
    expect(r.code).toBe(0);
    expect(r.json['verdict']).toBe('ok');
    expect(r.json['src']).toMatchObject({ subnet: subnet(0), host: '198.18.0.1', local: true });
    expect(r.json['dst']).toMatchObject({ subnet: subnet(1), host: '198.18.0.2', local: false });
    expect(r.json['outer']).toEqual({
      src: '198.18.0.1',
      dst: '198.18.0.2',
      protocol: 'udp',
      port: 8472,
      vni: 1,
      innerDstMac: await vtepMac(1),
    });
    const whats = (r.json['steps'] as { what: string }[]).map((s) => s.what);
    expect(whats).toEqual(['owner', 'owner', 'route', 'neighbour', 'fdb', 'encap', 'deliver']);
    // on the receiving host: delivered locally, and the reply goes back to h1
    const back = await ctl(1, ['trace', c1.ip, c2.ip, '--json'], TRACE_SCHEMA);
    expect(back.code).toBe(0);
    expect(back.json['dst']).toMatchObject({ local: true });
    expect(back.json['outer']).toMatchObject({
      src: '198.18.0.2',
      dst: '198.18.0.1',
      innerDstMac: await vtepMac(0),
    });
  });

  it('ping through the overlay from a container: no loss; to a silent address: 100 % loss', async () => {
    const r = await ctl(
      0,
      ['ping', c2.ip, `--from-container=${c1.netns}`, '--count=5', '--interval=0.05', '--json'],
      PING_SCHEMA,
    );
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ transmitted: 5, received: 5, lossPercent: 0 });
    expect((r.json['rttMs'] as { avg: number }).avg).toBeGreaterThan(0);
    const lost = await ctl(
      0,
      ['ping', hostAddr4(subnet(2), 99), '--count=2', '--interval=0.05', '--json'],
      PING_SCHEMA,
    );
    expect(lost.code).toBe(1);
    expect(lost.json).toMatchObject({ transmitted: 2, received: 0, lossPercent: 100 });
  });

  it('config: get, validate with weftd rules, set refuses invalid JSON and writes valid JSON', async () => {
    const get = await ctl(1, ['config', 'get', '--json'], CONFIG_SCHEMA);
    expect(get.code).toBe(0);
    expect(get.json).toMatchObject({
      valid: true,
      config: { network: '10.5.0.0/16', backend: 'vxlan' },
    });
    const bad = await ctl(
      1,
      ['config', 'set', '{"Network":"10.5.0.0/16","SubnetLen":33}', '--json'],
      CONFIG_SCHEMA,
    );
    expect(bad.code).toBe(3);
    expect(bad.json).toMatchObject({ ok: false, written: false });
    expect(String(bad.json['error'])).toMatch(/SubnetLen/);
    const typo = await ctl(1, [
      'config',
      'validate',
      '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlna"}}',
    ]);
    expect(typo.code).toBe(3);
    expect(typo.stdout).toMatch(/vxlna/);
    expect(await c.etcd.etcdctl(['get', '--print-value-only', `${c.prefix}/config`])).toContain(
      '"Type":"vxlan"',
    );
    const good = await ctl(
      1,
      ['config', 'set', '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":1}}', '--json'],
      CONFIG_SCHEMA,
    );
    expect(good.code).toBe(0);
    expect(good.json).toMatchObject({ ok: true, written: true });
    expect(await c.etcd.etcdctl(['get', '--print-value-only', `${c.prefix}/config`])).toContain(
      '"VNI":1',
    );
  });

  it('lease reserve and release manage a reservation', async () => {
    const r = await ctl(
      2,
      ['lease', 'reserve', '10.5.250.0/24', '--public-ip=198.18.0.77', '--json'],
      LEASE_ACTION_SCHEMA,
    );
    expect(r.code).toBe(0);
    const leases = (await ctl(2, ['leases', '--json'], LEASES_SCHEMA)).json['leases'] as Record<
      string,
      unknown
    >[];
    expect(leases.find((l) => l['key'] === '10.5.250.0-24')).toMatchObject({
      reserved: true,
      publicIp: '198.18.0.77',
      expiresInSeconds: null,
    });
    const notMine = await ctl(2, ['lease', 'release', subnet(0)]);
    expect(notMine.code).toBe(2); // a normal lease, not a reservation
    const rel = await ctl(2, ['lease', 'release', '10.5.250.0/24', '--json'], LEASE_ACTION_SCHEMA);
    expect(rel.code).toBe(0);
    expect(await c.etcd.etcdctl(['get', '--keys-only', `${c.prefix}/subnets/10.5.250.0-24`])).toBe(
      '',
    );
    const outside = await ctl(2, ['lease', 'reserve', '10.6.1.0/24', '--public-ip=198.18.0.77']);
    expect(outside.code).toBe(2);
  });

  describe('faults made on purpose on h1 (weftd stopped, its dataplane stays)', () => {
    beforeAll(async () => {
      await stopChild(d[0]!.child, 5000);
      const ns = d[0]!.host.netns;
      const mac2 = await vtepMac(1);
      await nsRun(ns, 'bridge', ['fdb', 'del', mac2, 'dev', 'weft.1', 'dst', '198.18.0.2', 'self']);
      await nsRun(ns, 'ip', [
        'neigh',
        'replace',
        hostAddr4(subnet(2), 0),
        'lladdr',
        '02:00:00:00:00:99',
        'dev',
        'weft.1',
        'nud',
        'permanent',
      ]);
      await nsRun(ns, 'nft', ['delete', 'chain', 'ip', 'weft', 'forward']);
      await nsRun(ns, 'ip', ['link', 'set', 'dev', 'weft.1', 'mtu', '1400']);
      // FORWARD policy is DROP since the Docker test below; drop weftd's jump to WEFT-FWD too
      await nsRun(ns, 'iptables', [
        '-D',
        'FORWARD',
        '-m',
        'comment',
        '--comment',
        'weft forward',
        '-j',
        'WEFT-FWD',
      ]);
    });

    it('peers names the missing FDB entry and the wrong neighbour MAC, exit 1', async () => {
      const r = await ctl(0, ['peers', '--json'], PEERS_SCHEMA);
      expect(r.code).toBe(1);
      const peers = r.json['peers'] as {
        subnet: string;
        verdict: string;
        problems: string[];
        fixes: string[];
      }[];
      const p2 = peers.find((p) => p.subnet === subnet(1))!;
      const p3 = peers.find((p) => p.subnet === subnet(2))!;
      expect(p2.verdict).toBe('missing');
      expect(p2.problems.join()).toMatch(/no FDB entry/);
      expect(p2.fixes.join()).toMatch(/bridge fdb replace .* dst 198\.18\.0\.2 self permanent/);
      expect(p3.verdict).toBe('wrong-mac');
      expect(p3.problems.join()).toMatch(/02:00:00:00:00:99/);
      const human = await ctl(0, ['peers']);
      expect(human.stdout).toMatch(/wrong-mac/);
      expect(human.stdout).toMatch(/fix: ip neigh replace/);
    });

    it('doctor names every fault with its fix and exits 1', async () => {
      const r = await ctl(0, ['doctor', '--json', '--no-probe'], DOCTOR_SCHEMA);
      expect(r.code).toBe(1);
      const checks = r.json['checks'] as {
        id: string;
        status: string;
        message: string;
        fixes: string[];
      }[];
      const failed = (re: RegExp): { message: string; fixes: string[] } | undefined =>
        checks.find((x) => x.status === 'fail' && re.test(`${x.id} ${x.message}`));
      expect(
        failed(new RegExp(`peer:.*${subnet(1).replace(/\./g, '\\.')}.*missing`))?.fixes.join(),
      ).toMatch(/bridge fdb replace/);
      expect(failed(/wrong-mac/)?.fixes.join()).toMatch(/ip neigh replace/);
      expect(failed(/rules:ip .*chain forward is missing/)).toBeDefined();
      expect(failed(/mtu:weft\.1 .*MTU is 1400, want 1450/)?.fixes).toContain(
        'ip link set dev weft.1 mtu 1450',
      );
      expect(failed(/^weftd .*does not answer/)).toBeDefined();
      expect(failed(/^forward-policy:iptables .*DROP and nothing jumps to WEFT-FWD/)).toBeDefined();
      const human = await ctl(0, ['doctor', '--no-probe']);
      expect(human.code).toBe(1);
      expect(human.stdout).toMatch(/\[FAIL\] .*MTU is 1400/);
      expect(human.stdout).toMatch(/fix: ip link set dev weft\.1 mtu 1450/);
    });

    it('trace shows where the packet is dropped and what is missing', async () => {
      const r = await ctl(0, ['trace', c1.ip, c2.ip, '--json'], TRACE_SCHEMA);
      expect(r.code).toBe(1);
      expect(r.json['verdict']).toBe('dropped');
      expect((r.json['missing'] as string[]).join()).toMatch(/FDB entry .* bridge fdb replace/);
      const ping = await ctl(
        0,
        ['ping', c2.ip, `--from-container=${c1.netns}`, '--count=2', '--interval=0.05', '--json'],
        PING_SCHEMA,
      );
      expect(ping.code).toBe(1);
      expect(ping.json['lossPercent']).toBe(100);
    });

    it('doctor probes the underlay: a smaller MTU on the path to h2 is named (DF probe)', async () => {
      await nsRun(d[1]!.host.netns, 'ip', ['link', 'set', 'dev', 'eth0', 'mtu', '1400']);
      try {
        const r = await ctl(0, ['doctor', '--json'], DOCTOR_SCHEMA);
        expect(r.code).toBe(1);
        const checks = r.json['checks'] as { id: string; status: string; message: string }[];
        expect(checks.find((x) => x.id === 'pmtu:198.18.0.2')).toMatchObject({
          status: 'fail',
          message: expect.stringMatching(
            /packets of 1500 bytes with DF do not reach 198\.18\.0\.2/,
          ),
        });
        expect(checks.find((x) => x.id === 'underlay:198.18.0.2')?.status).toBe('pass');
        expect(checks.find((x) => x.id === 'pmtu:198.18.0.3')).toBeUndefined();
      } finally {
        await nsRun(d[1]!.host.netns, 'ip', ['link', 'set', 'dev', 'eth0', 'mtu', '1500']);
      }
    });

    it('with etcd stopped, status and doctor report it and exit 4', async () => {
      await c.etcd.kill();
      const s = await ctl(0, ['status', '--json'], STATUS_SCHEMA);
      expect(s.code).toBe(4);
      expect(s.json['etcd']).toMatchObject({ reachable: false });
      const doc = await ctl(0, ['doctor', '--json', '--no-probe'], DOCTOR_SCHEMA);
      expect(doc.code).toBe(4);
      const etcd = (doc.json['checks'] as { id: string; status: string }[]).find(
        (x) => x.id === 'etcd',
      );
      expect(etcd?.status).toBe('fail');
      const leases = await ctl(0, ['leases', '--json']);
      expect(leases.code).toBe(4);
      expect(leases.json).toMatchObject({ ok: false, error: { code: 'E_ETCD_UNAVAILABLE' } });
    });
  });
});
