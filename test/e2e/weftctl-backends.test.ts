/**
 * weftctl against the other dataplanes weftd builds: dual-stack VXLAN (an IPv6 device `weft-v6.1` with
 * its own neighbours and FDB towards the peers' PublicIPv6) and host-gw (plain routes via the peers'
 * public IPs). Three hosts with real weftd each; weftctl runs in h1's netns. peers and doctor must see a
 * healthy cluster as healthy, for both families, and name a route deleted on purpose.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { nsRun, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import {
  DOCTOR_SCHEMA,
  PEERS_SCHEMA,
  TRACE_SCHEMA,
  validate,
  type Schema,
} from '../unit/cli/schema.js';
import { hostAddr4, hostAddr6, runWeftctl, subnetsOf, useCluster } from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft');
useLeakCheck();

const cases = [
  {
    name: 'vxlan, dual stack',
    config: {
      Network: '10.5.0.0/16',
      EnableIPv6: true,
      IPv6Network: 'fd05::/48',
      Backend: { Type: 'vxlan' },
    },
  },
  { name: 'host-gw', config: { Network: '10.5.0.0/16', Backend: { Type: 'host-gw' } } },
] as const;

describe.skipIf(!runnable).each(cases)('weftctl with $name', ({ name, config }) => {
  const setup = useCluster(3, config, [], 'weftd');

  async function ctl(
    i: number,
    args: string[],
    schema: Schema,
  ): Promise<{ code: number; json: Record<string, unknown> }> {
    const r = await runWeftctl(setup.c, setup.d[i]!, [...args, '--json']);
    const json = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(validate(json, schema), `weftctl ${args.join(' ')}`).toEqual([]);
    return { code: r.code, json };
  }

  beforeAll(async () => {
    await waitFor(
      'h1 to program both peers',
      async () => (await ctl(0, ['peers'], PEERS_SCHEMA)).code === 0,
      15_000,
      200,
    );
  });

  it('peers: every peer ok in every family', async () => {
    const { d } = setup;
    const r = await ctl(0, ['peers'], PEERS_SCHEMA);
    const peers = r.json['peers'] as {
      subnet: string;
      family: number;
      verdict: string;
      route: string;
    }[];
    const dual = name.includes('dual');
    const want = [1, 2].flatMap((i) => {
      const s = subnetsOf(d[i]!);
      return dual ? [s.subnet, s.subnet6!] : [s.subnet];
    });
    expect(peers.map((p) => p.subnet).sort()).toEqual(want.sort());
    expect(peers.map((p) => p.verdict)).toEqual(peers.map(() => 'ok'));
    expect(r.code).toBe(0);
    if (dual) expect(peers.find((p) => p.family === 6)?.route).toMatch(/dev weft-v6\.1 onlink/);
    else expect(peers[0]?.route).toMatch(/via 198\.18\.0\.[23] dev eth0/);
  });

  it('doctor: no failed check on a healthy host', async () => {
    const r = await ctl(0, ['doctor'], DOCTOR_SCHEMA);
    expect((r.json['checks'] as { status: string }[]).filter((x) => x.status === 'fail')).toEqual(
      [],
    );
    expect(r.code).toBe(0);
  });

  it('trace between hosts follows the backend (IPv6 over weft-v6.1 when dual stack)', async () => {
    const { d } = setup;
    const s1 = subnetsOf(d[0]!);
    const s2 = subnetsOf(d[1]!);
    const dual = name.includes('dual');
    const [src, dst] = dual
      ? [hostAddr6(s1.subnet6!, 2), hostAddr6(s2.subnet6!, 2)]
      : [hostAddr4(s1.subnet, 2), hostAddr4(s2.subnet, 2)];
    const r = await ctl(0, ['trace', src, dst], TRACE_SCHEMA);
    expect(r.json['verdict']).toBe('ok');
    if (dual) expect(r.json['outer']).toMatchObject({ src: 'fd18::1', dst: 'fd18::2', port: 8472 });
    else expect(r.json['outer']).toBeNull();
  });

  it('a peer route deleted on purpose (weftd stopped) is named missing with its fix', async () => {
    const { d } = setup;
    const w = d[0]!;
    w.child.kill('SIGTERM');
    await w.exit;
    const s2 = subnetsOf(d[1]!).subnet;
    await nsRun(w.host.netns, 'ip', ['route', 'del', s2]);
    const r = await ctl(0, ['peers'], PEERS_SCHEMA);
    expect(r.code).toBe(1);
    const p = (r.json['peers'] as { subnet: string; verdict: string; fixes: string[] }[]).find(
      (x) => x.subnet === s2,
    )!;
    expect(p.verdict).toBe('missing');
    expect(p.fixes[0]).toMatch(new RegExp(`^ip route replace ${s2.replace(/\./g, '\\.')} via`));
  });
});
