/**
 * An operator changes Backend.Type and restarts weftd on every host (docs/configuration.md "Changing
 * the backend"). What the earlier backend left (the `weft.1` VXLAN device with its per-peer /24 routes,
 * the `weft-wg` TUN, host-gw's routes via the uplink) would otherwise stay until a reboot, and its more
 * specific routes win over the new backend's: traffic silently bypasses it (and WireGuard's
 * encryption). weftd removes them at start, once the new backend's devices are up and before its peer
 * loop programs a peer (src/backend/leftovers.ts). Never touched: a VXLAN device that is not weft's
 * (even one carrying the host's subnet address), an operator's route into the cluster network, and
 * anything at a restart with the same backend. Two hosts, one container each; the switches run in order
 * vxlan → wireguard → host-gw → udp → udp → vxlan (VNI 2) → vxlan (VNI 3).
 */
import { describe, expect, it } from 'vitest';
import { nsRun, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import {
  expectThreePings,
  hostAddr4,
  ipOut,
  metricsText,
  putConfig,
  restartWeftd,
  runWeftctl,
  subnetsOf,
  useCluster,
  waitReady,
  type ClusterSetup,
} from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft', 'tun');
useLeakCheck();

const NETWORK = '10.5.0.0/16';
const config = (type: string, more: object = {}): unknown => ({
  Network: NETWORK,
  Backend: { Type: type, ...more },
});

/** Stops weftd on every host, puts `type` (with the Backend keys `more`) into the config, starts them
 *  again and waits until each has programmed the other. */
async function switchTo(setup: ClusterSetup, type: string, more: object = {}): Promise<void> {
  const { c, d } = setup;
  for (const w of d) {
    w.child.kill('SIGTERM');
    await w.exit;
  }
  await putConfig(c, config(type, more));
  for (const w of d) restartWeftd(c, w);
  await Promise.all(d.map((w) => waitReady(w)));
  await Promise.all(
    d.map((w) =>
      waitFor(
        `${w.host.netns} to program its peer with ${type}`,
        async () => new RegExp(`weft_peers\\{backend="${type}"\\} 1`).test(await metricsText(w)),
        20_000,
        200,
      ),
    ),
  );
}

/** `ip route get` of the peer's container from host 0. */
async function routeToPeer(setup: ClusterSetup): Promise<string> {
  return ipOut(setup.d[0]!.host.netns, ['route', 'get', setup.ctr[1]!.ip]);
}

async function linkExists(ns: string, name: string): Promise<boolean> {
  return (await nsRun(ns, 'ip', ['link', 'show', name], { allowFail: true })).code === 0;
}

describe.skipIf(!runnable)('Backend.Type changed and weftd restarted', () => {
  const setup = useCluster(2, config('vxlan'));
  /** An operator's VXLAN device on host 0 (not weft's MAC, though it carries weft's address). */
  const FOREIGN = 'opvx.7';

  it('vxlan → wireguard: weft.1 and its /24 routes go, traffic takes weft-wg; a foreign VXLAN device stays', async () => {
    const { d, ctr } = setup;
    const ns = d[0]!.host.netns;
    const own = subnetsOf(d[0]!).subnet;
    const peer = subnetsOf(d[1]!).subnet;
    expect(await ipOut(ns, ['route', 'show', peer])).toContain('dev weft.1');
    // the foreign device: VNI 1 like weft's (another port), with this host's subnet address on it
    await nsRun(ns, 'ip', [
      ...['link', 'add', FOREIGN, 'type', 'vxlan', 'id', '1', 'dstport', '4790'],
      ...['dev', 'eth0', 'local', d[0]!.host.underlayIp],
    ]);
    await nsRun(ns, 'ip', ['addr', 'add', `${own.split('/')[0]}/32`, 'dev', FOREIGN]);
    await nsRun(ns, 'ip', ['link', 'set', FOREIGN, 'up']);
    await nsRun(ns, 'ip', ['route', 'add', '192.168.77.0/24', 'dev', FOREIGN]);

    await switchTo(setup, 'wireguard');
    // traffic to the peer's container takes the new device (a stale /24 on weft.1 would win)
    expect(await routeToPeer(setup)).toMatch(/ dev weft-wg /);
    for (const w of d) {
      expect(await linkExists(w.host.netns, 'weft.1'), w.host.netns).toBe(false);
      expect(w.logs).toContain(
        'removed the vxlan device (VNI 1, port 8472) weft.1 of an earlier weft backend',
      );
    }
    expect(await ipOut(ns, ['route', 'show', peer])).toBe('');
    expect(await linkExists(ns, FOREIGN)).toBe(true);
    expect(await ipOut(ns, ['route', 'show', 'dev', FOREIGN])).toContain('192.168.77.0/24');
    expect(d[0]!.logs).not.toContain(FOREIGN);
    await expectThreePings(ctr[0]!, ctr[1]!);
    await expectThreePings(ctr[1]!, ctr[0]!);
    // doctor cannot derive weft's VTEP MAC: it names the device carrying this host's subnet address
    // (a warning: none of its routes lead into the cluster network), and nothing else
    const doc = await runWeftctl(setup.c, d[0]!, ['doctor', '--json', '--no-probe']);
    const checks = (JSON.parse(doc.stdout) as { checks: { id: string; status: string }[] }).checks;
    expect(checks.filter((x) => x.id.startsWith('leftover:'))).toEqual([
      expect.objectContaining({ id: `leftover:${FOREIGN}`, status: 'warn' }),
    ]);
  });

  it('wireguard → host-gw: the weft-wg TUN goes, the peer is routed via its host', async () => {
    const { d, ctr } = setup;
    await switchTo(setup, 'host-gw');
    for (const w of d) {
      expect(await linkExists(w.host.netns, 'weft-wg'), w.host.netns).toBe(false);
      expect(w.logs).toContain('removed the TUN device weft-wg of an earlier weft backend');
    }
    expect(await routeToPeer(setup)).toMatch(
      new RegExp(` via ${d[1]!.host.underlayIp.replace(/\./g, '\\.')} dev eth0 `),
    );
    expect(await linkExists(d[0]!.host.netns, FOREIGN)).toBe(true);
    await expectThreePings(ctr[0]!, ctr[1]!);
  });

  it("host-gw → udp: host-gw's routes on the uplink go, traffic takes weft0; an operator's route stays", async () => {
    const { d, ctr } = setup;
    const ns = d[0]!.host.netns;
    const peer = subnetsOf(d[1]!).subnet;
    expect(await ipOut(ns, ['route', 'show', peer])).toMatch(/proto static/);
    // an operator's route into the cluster network, of host-gw's shape but `proto boot` (ip's default)
    const taken = new Set(d.map((w) => subnetsOf(w).subnet));
    const mine = ['10.5.250.0/24', '10.5.251.0/24'].find((s) => !taken.has(s))!;
    await nsRun(ns, 'ip', ['route', 'add', mine, 'via', d[1]!.host.underlayIp, 'dev', 'eth0']);

    await switchTo(setup, 'udp');
    for (const w of d) {
      expect(w.logs).toContain('removed the uplink routes of an earlier weft backend');
      expect(await ipOut(w.host.netns, ['route', 'show', 'dev', 'eth0', 'proto', 'static'])).toBe(
        '',
      );
    }
    expect(await ipOut(ns, ['route', 'show', peer])).toBe('');
    expect(await routeToPeer(setup)).toMatch(/ dev weft0 /);
    expect(await ipOut(ns, ['route', 'show', mine])).toContain(`via ${d[1]!.host.underlayIp}`);
    expect(await ipOut(ns, ['route', 'get', hostAddr4(mine, 9)])).toMatch(/ dev eth0 /);
    await expectThreePings(ctr[0]!, ctr[1]!);
    await expectThreePings(ctr[1]!, ctr[0]!);
  });

  it('udp → udp (a plain restart): the device and every route stay as they were', async () => {
    const { d, ctr } = setup;
    const ns = d[0]!.host.netns;
    const link = await ipOut(ns, ['-o', 'link', 'show', 'weft0']);
    const routes = await ipOut(ns, ['route', 'show']);
    await switchTo(setup, 'udp');
    // the same ifindex: the TUN was attached again, not re-created
    expect((await ipOut(ns, ['-o', 'link', 'show', 'weft0'])).split(':')[0]).toBe(
      link.split(':')[0],
    );
    expect(await ipOut(ns, ['route', 'show'])).toBe(routes);
    for (const w of d) expect(w.logs).not.toContain('of an earlier weft backend'); // this start's
    expect(await linkExists(ns, FOREIGN)).toBe(true);
    await expectThreePings(ctr[0]!, ctr[1]!);
  });

  it('udp → vxlan VNI 2 → vxlan VNI 3: weft0, then weft.2 go, traffic takes the new device; a plain vxlan restart keeps everything', async () => {
    const { d, ctr } = setup;
    const ns = d[0]!.host.netns;
    await switchTo(setup, 'vxlan', { VNI: 2 });
    for (const w of d) {
      expect(await linkExists(w.host.netns, 'weft0'), w.host.netns).toBe(false);
      expect(w.logs).toContain('removed the TUN device weft0 of an earlier weft backend');
    }
    expect(await routeToPeer(setup)).toMatch(/ dev weft\.2 /);
    expect(await ipOut(ns, ['route', 'show', NETWORK])).toBe('');
    await expectThreePings(ctr[0]!, ctr[1]!);

    await switchTo(setup, 'vxlan', { VNI: 3 });
    for (const w of d) {
      expect(await linkExists(w.host.netns, 'weft.2'), w.host.netns).toBe(false);
      expect(w.logs).toContain(
        'removed the vxlan device (VNI 2, port 8472) weft.2 of an earlier weft backend',
      );
    }
    expect(await routeToPeer(setup)).toMatch(/ dev weft\.3 /);

    // a plain restart on VNI 3: the device (same ifindex) and every route stay
    const link = await ipOut(ns, ['-o', 'link', 'show', 'weft.3']);
    const routes = await ipOut(ns, ['route', 'show']);
    await switchTo(setup, 'vxlan', { VNI: 3 });
    expect((await ipOut(ns, ['-o', 'link', 'show', 'weft.3'])).split(':')[0]).toBe(
      link.split(':')[0],
    );
    expect(await ipOut(ns, ['route', 'show'])).toBe(routes);
    for (const w of d) expect(w.logs).not.toContain('of an earlier weft backend');
    // the operator's device (VNI 1, weft's address, not weft's MAC) outlived every switch
    expect(await linkExists(ns, FOREIGN)).toBe(true);
    await expectThreePings(ctr[0]!, ctr[1]!);
    await expectThreePings(ctr[1]!, ctr[0]!);
  });
});
