/**
 * Backend `wireguard` end to end: real weftd processes on two simulated hosts (etcd on the underlay)
 * and, on a third host, Debian's wireguard-go configured by hand the way flannel's wireguard backend
 * configures a node (device address = its lease subnet IP/32, a route to the network, one peer per
 * lease with AllowedIPs = the lease subnet and Endpoint = PublicIP:ListenPort). The third host's lease
 * is written into etcd in flannel's format (`BackendType: wireguard`, `BackendData: {PublicKey}`), as
 * a flannel node would write it. Every container pings every other one, both directions.
 * Also: the private key is 0600 in --state-dir, never in the log, and stable across a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { SimContainer } from '../helpers/netns.js';
import type { ChildProcess } from 'node:child_process';
import { nsRun, run, sleep, spawnTracked, stopChild, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { startWireguardGo, type WgGoDevice } from '../helpers/wireguard-go.js';
import {
  addContainer,
  createCluster,
  pingOnce,
  metricsText,
  putConfig,
  restartWeftd,
  runWeftctl,
  startWeftd,
  subnetsOf,
  waitReady,
  type Cluster,
  type Weftd,
} from './weftd-harness.js';

const runnable = requireCaps(
  'root',
  'netns',
  'etcd',
  'etcdctl',
  'ping',
  'nft',
  'tun',
  'wireguardGo',
);
useLeakCheck();

const PSK = randomBytes(32).toString('base64');
const CONFIG = {
  Network: '10.5.0.0/16',
  Backend: { Type: 'wireguard', PersistentKeepaliveInterval: 0 },
};

async function pubOfKeyFile(path: string): Promise<string> {
  return (await run('wg', ['pubkey'], { input: readFileSync(path, 'utf8') })).stdout.trim();
}

describe.skipIf(!runnable)('weftd wireguard backend with a flannel-style wireguard-go host', () => {
  let c: Cluster;
  let daemons: Weftd[];
  let wgo: WgGoDevice;
  const containers: SimContainer[] = [];

  const weftPeerCount = async (w: Weftd): Promise<string | undefined> =>
    /weft_peers\{backend="wireguard"\} (\d+)/.exec(await metricsText(w))?.[1];

  beforeAll(async () => {
    c = await createCluster(3);
    const [h1, h2, h3] = c.topo.hosts;
    if (!h1 || !h2 || !h3) throw new Error('topology');
    // host 3: wireguard-go, its lease written the way flannel writes one (a reservation: no TTL)
    wgo = await startWireguardGo({
      ns: h3.netns,
      address: '10.5.200.0/32',
      network: '10.5.0.0/16',
      mtu: 1420,
      listenPort: 51820,
    });
    await c.etcd.etcdctl([
      'put',
      `${c.prefix}/subnets/10.5.200.0-24`,
      JSON.stringify({
        PublicIP: h3.underlayIp,
        BackendType: 'wireguard',
        BackendData: { PublicKey: wgo.publicKey },
      }),
    ]);
    await putConfig(c, CONFIG);
    daemons = [startWeftd(c, h1), startWeftd(c, h2)];
    await Promise.all(daemons.map((w) => waitReady(w)));
    for (const w of daemons) {
      await waitFor(
        `${w.host.netns} to program 2 peers`,
        async () => (await weftPeerCount(w)) === '2',
        20_000,
        200,
      );
    }
    // wireguard-go gets one peer per weft lease, flannel-style
    for (const w of daemons) {
      await wgo.setPeer({
        publicKey: await pubOfKeyFile(join(w.dir, 'state', 'wireguard.key')),
        allowedIps: [subnetsOf(w).subnet],
        endpoint: `${w.host.underlayIp}:51820`,
      });
    }
    for (const w of daemons) containers.push(await addContainer(c, w, 2));
    containers.push(
      await c.topo.addContainer(h3, { cidr: '10.5.200.2/24', gateway: '10.5.200.1' }),
    );
  }, 120_000);

  afterAll(async () => {
    await wgo?.stop();
    await c?.destroy();
  });

  it('publishes the public key in the lease like flannel and keeps the private key 0600, unlogged', async () => {
    for (const w of daemons) {
      const keyFile = join(w.dir, 'state', 'wireguard.key');
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      const priv = readFileSync(keyFile, 'utf8').trim();
      expect(w.logs).not.toContain(priv);
      const pub = await pubOfKeyFile(keyFile);
      const key = `${c.prefix}/subnets/${subnetsOf(w).subnet.replace('/', '-')}`;
      const value = JSON.parse(
        (await c.etcd.etcdctl(['get', key, '--print-value-only'])).trim(),
      ) as {
        BackendType: string;
        BackendData: { PublicKey: string };
      };
      expect(value.BackendType).toBe('wireguard');
      expect(value.BackendData).toEqual({ PublicKey: pub });
      const dev = await nsRun(w.host.netns, 'ip', ['-o', 'link', 'show', 'weft-wg']);
      expect(dev.stdout).toContain('mtu 1420'); // flannel's rule: 1500 - 80
      expect(readFileSync(w.subnetFile, 'utf8')).toContain('FLANNEL_MTU=1420');
    }
  });

  it('every container reaches every other one: weft↔weft and weft↔wireguard-go, both directions', async () => {
    const failures: string[] = [];
    // wireguard-go's container first, so wireguard-go initiates towards one weft host
    for (const a of [containers[2]!, containers[0]!, containers[1]!]) {
      for (const b of containers) {
        if (a === b) continue;
        const f = await pingOnce(a, b.ip);
        if (f) failures.push(f);
      }
    }
    expect(failures).toEqual([]);
    const peers = await wgo.peers();
    expect([...peers.values()].filter((p) => p.latestHandshake > 0).length).toBe(2);
  });

  it('weftctl peers shows each peer’s handshake, bytes and endpoint', async () => {
    const r = await runWeftctl(c, daemons[0]!, ['peers', '--json']);
    const out = JSON.parse(r.stdout) as {
      peers: {
        lease: string | null;
        verdict: string;
        wireguard?: { endpoint: string | null; lastHandshakeSec: number; rxBytes: number };
      }[];
    };
    // weftctl renders weftd's plan: both peers planned and routed into the TUN (never "refused")
    expect(out.peers.map((p) => p.verdict)).toEqual(['ok', 'ok']);
    const wg = out.peers.map((p) => p.wireguard).filter((x) => x !== undefined);
    expect(wg.length).toBe(2);
    for (const p of wg) {
      expect(p.lastHandshakeSec).toBeGreaterThan(0);
      expect(p.rxBytes).toBeGreaterThan(0);
      expect(p.endpoint).toMatch(/^198\.18\.0\.\d:51820$/);
    }
    expect(r.code).toBe(0);
  });

  it('weftctl doctor checks the WireGuard devices and sessions', async () => {
    const r = await runWeftctl(c, daemons[0]!, ['doctor', '--json', '--no-probe']);
    const out = JSON.parse(r.stdout) as {
      checks: { id: string; status: string; message: string }[];
    };
    const byId = new Map(out.checks.map((x) => [x.id, x]));
    expect(byId.get('device:weft-wg')?.status).toBe('pass');
    expect(byId.get('mtu:weft-wg')?.status).toBe('pass');
    expect(byId.get('wireguard')?.status).toBe('pass');
    expect(byId.get('wireguard')?.message).toMatch(/2 of 2 peers have completed a handshake/);
  });

  it('a restart keeps the key: peers reconnect without reconfiguration', async () => {
    const w = daemons[0]!;
    const keyFile = join(w.dir, 'state', 'wireguard.key');
    const before = readFileSync(keyFile, 'utf8');
    w.child.kill('SIGTERM');
    await stopChild(w.child);
    restartWeftd(c, w);
    await waitReady(w);
    expect(readFileSync(keyFile, 'utf8')).toBe(before);
    await waitFor(
      'peers programmed again',
      async () => (await weftPeerCount(w)) === '2',
      20_000,
      200,
    );
    expect(await pingOnce(containers[0]!, containers[2]!.ip)).toBeNull();
    expect(await pingOnce(containers[2]!, containers[0]!.ip)).toBeNull();
    expect(await pingOnce(containers[1]!, containers[0]!.ip)).toBeNull();
  });

  it('a lease key with non-zero padding bits (Go reads it as the same key): no session reset at each resync', async () => {
    // "…A=" and "…B=" (padding bits set) are one key to flannel's Go decoder and to the engine.
    const k = wgo.publicKey;
    const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const odd = `${k.slice(0, 42)}${b64[b64.indexOf(k[42]!) | 1]}=`;
    expect(odd).not.toBe(k);
    expect(Buffer.from(odd, 'base64')).toEqual(Buffer.from(k, 'base64'));
    await c.etcd.etcdctl([
      'put',
      `${c.prefix}/subnets/10.5.200.0-24`,
      JSON.stringify({
        PublicIP: c.topo.hosts[2]!.underlayIp,
        BackendType: 'wireguard',
        BackendData: { PublicKey: odd },
      }),
    ]);
    const weft0 = await pubOfKeyFile(join(daemons[0]!.dir, 'state', 'wireguard.key'));
    const handshake = async (): Promise<number> =>
      (await wgo.peers()).get(weft0)?.latestHandshake ?? 0;
    expect(await pingOnce(containers[0]!, containers[2]!.ip)).toBeNull();
    const first = await handshake();
    expect(first).toBeGreaterThan(0);
    // Four full reconciles (--resync-period=3): a peer removed and re-added at each one would
    // handshake again each time (its session dropped); a kept peer rekeys only after 120 s.
    await sleep(12_000);
    expect(await pingOnce(containers[0]!, containers[2]!.ip)).toBeNull();
    expect(await handshake()).toBe(first);
    expect(await weftPeerCount(daemons[0]!)).toBe('2');
  });

  it("refuses a lease that publishes this host's own key (a cloned wireguard.key), in weftd and weftctl", async () => {
    const w = daemons[0]!;
    const own = await pubOfKeyFile(join(w.dir, 'state', 'wireguard.key'));
    const clone = `${c.prefix}/subnets/10.5.201.0-24`;
    await c.etcd.etcdctl([
      'put',
      clone,
      JSON.stringify({
        PublicIP: '198.18.0.99',
        BackendType: 'wireguard',
        BackendData: { PublicKey: own },
      }),
    ]);
    try {
      await waitFor(
        'weftd to refuse the cloned key',
        async () => /own public key: two hosts share one private key/.test(w.logs),
        15_000,
        200,
      );
      const line = w.logs.split('\n').find((l) => l.includes('own public key'))!;
      expect(line).toMatch(/"level":40,/); // warn
      expect(line).toContain(`delete ${join(w.dir, 'state', 'wireguard.key')} on one of them`);
      expect(await weftPeerCount(w)).toBe('2'); // never programmed as a peer
      const r = await runWeftctl(c, w, ['peers', '--json']);
      const out = JSON.parse(r.stdout) as {
        peers: { lease: string | null; verdict: string; reason?: string }[];
      };
      const row = out.peers.find((p) => p.lease === '10.5.201.0-24');
      expect(row?.verdict).toBe('refused');
      expect(row?.reason).toMatch(
        /own public key.*delete <state-dir>\/wireguard\.key on one of them and restart/,
      );
      const d = await runWeftctl(c, w, ['doctor', '--json', '--no-probe']);
      const checks = (JSON.parse(d.stdout) as { checks: { status: string; message: string }[] })
        .checks;
      const refused = checks.filter((x) => /own public key/.test(x.message));
      expect(refused.map((x) => x.status)).toEqual(['fail']);
      expect(refused[0]?.message).toContain('10.5.201.0-24');
    } finally {
      await c.etcd.etcdctl(['del', clone]);
    }
  });

  it("a lease refused for another lease's key shows no live session in weftctl peers and status", async () => {
    // Before: both looked the engine's peer up by key alone, so the refused lease was shown with the
    // other lease's handshake, endpoint and bytes, as if it were a healthy peer.
    const w = daemons[0]!;
    const other = await pubOfKeyFile(join(daemons[1]!.dir, 'state', 'wireguard.key'));
    const dup = `${c.prefix}/subnets/10.5.202.0-24`;
    await c.etcd.etcdctl([
      'put',
      dup,
      JSON.stringify({
        PublicIP: '198.18.0.98',
        BackendType: 'wireguard',
        BackendData: { PublicKey: other },
      }),
    ]);
    try {
      await waitFor(
        'weftd to refuse the second lease with that key',
        async () => /"peer":"10\.5\.202\.0-24".*already holds its public key/.test(w.logs),
        15_000,
        200,
      );
      const p = JSON.parse((await runWeftctl(c, w, ['peers', '--json'])).stdout) as {
        peers: { lease: string | null; verdict: string; wireguard: unknown }[];
      };
      const row = p.peers.find((x) => x.lease === '10.5.202.0-24');
      expect(row?.verdict).toBe('refused');
      expect(row?.wireguard).toBeNull();
      // the lease that holds the key keeps its live state
      const holder = p.peers.find(
        (x) => x.lease === subnetsOf(daemons[1]!).subnet.replace('/', '-'),
      );
      expect(holder?.wireguard).toMatchObject({ publicKey: other });
      const st = await runWeftctl(c, w, ['status', '--json']);
      const s = JSON.parse(st.stdout) as {
        wireguard: { peers: { lease: string; refused: boolean; wireguard: unknown }[] };
      };
      expect(s.wireguard.peers.find((x) => x.lease === '10.5.202.0-24')).toMatchObject({
        refused: true,
        wireguard: null,
      });
      const human = (await runWeftctl(c, w, ['status'])).stdout;
      expect(human).toMatch(/wireguard 10\.5\.202\.0\/24: +refused by weftd/);
    } finally {
      await c.etcd.etcdctl(['del', dup]);
    }
  });

  it('a deleted TUN (ip link del weft-wg) is recreated in place: weftd keeps running, peers reconnect', async () => {
    const w = daemons[0]!;
    const child = w.child;
    await nsRun(w.host.netns, 'ip', ['link', 'del', 'weft-wg']);
    await waitFor(
      'weftd to recreate weft-wg',
      async () => w.logs.includes('"msg":"wireguard device recreated"') || child.exitCode !== null,
      20_000,
      200,
    );
    expect(child.exitCode).toBeNull();
    expect(w.logs).toContain('wireguard device was deleted (ip link del?): recreating it');
    const dev = await nsRun(w.host.netns, 'ip', ['-o', 'link', 'show', 'weft-wg']);
    expect(dev.stdout).toContain('mtu 1420');
    const route = await nsRun(w.host.netns, 'ip', ['route', 'show', '10.5.0.0/16']);
    expect(route.stdout).toContain('dev weft-wg');
    // both kinds of peers (weft on host 2, wireguard-go on host 3) get sessions again, both directions
    const pairs = [
      [containers[0]!, containers[2]!],
      [containers[2]!, containers[0]!],
      [containers[0]!, containers[1]!],
      [containers[1]!, containers[0]!],
    ] as const;
    await waitFor(
      'every pair to ping again',
      async () => {
        for (const [a, b] of pairs) if ((await pingOnce(a, b.ip)) !== null) return false;
        return true;
      },
      20_000,
      500,
    );
    // host 2 and host 3 never lost their other peer
    expect(await pingOnce(containers[1]!, containers[2]!.ip)).toBeNull();
    expect(child.exitCode).toBeNull();
    expect(w.logs).not.toContain('WireGuard device stopped: WireGuard device stopped');
  });
});

describe.skipIf(!runnable).each(['separate', 'ipv4'] as const)(
  'weftd wireguard dual stack, Mode %s',
  (mode) => {
    let c: Cluster;
    const containers: SimContainer[] = [];
    let daemons: Weftd[] = [];

    beforeAll(async () => {
      c = await createCluster(2);
      await putConfig(c, {
        Network: '10.5.0.0/16',
        EnableIPv6: true,
        IPv6Network: 'fd05::/48',
        // the PSK spelled as Go also reads it (ſ folds to s): still the secret, still never logged
        Backend: { Type: 'wireguard', Mode: mode, [mode === 'ipv4' ? 'P\u017fK' : 'PSK']: PSK },
      });
      daemons = c.topo.hosts.map((h) => startWeftd(c, h));
      await Promise.all(daemons.map((w) => waitReady(w)));
      for (const w of daemons) {
        await waitFor(
          `${w.host.netns} to program its peer`,
          async () => /weft_peers\{backend="wireguard"\} 1/.test(await metricsText(w)),
          20_000,
          200,
        );
        containers.push(await addContainer(c, w, 2));
      }
    }, 120_000);

    afterAll(async () => {
      await c?.destroy();
    });

    it('containers reach each other over IPv4 and IPv6, both directions', async () => {
      const failures: string[] = [];
      for (const a of containers) {
        for (const b of containers) {
          if (a === b) continue;
          for (const dst of [b.ip, b.ip6!]) {
            const f = await pingOnce(a, dst);
            if (f) failures.push(`${f} (${dst})`);
          }
        }
      }
      if (failures.length > 0) {
        // the engines' own counters say why (handshakes sent and answered, drops by reason)
        for (const w of daemons) {
          const wg = (await metricsText(w))
            .split('\n')
            .filter((l) => l.startsWith('weft_wireguard'));
          failures.push(`${w.host.netns}:\n${wg.join('\n')}`);
        }
      }
      expect(failures).toEqual([]);
      const links = await nsRun(daemons[0]!.host.netns, 'ip', ['-o', 'link', 'show']);
      expect(links.stdout.includes('weft-wg-v6')).toBe(mode === 'separate');
    });

    it('weftctl peers shows each family’s row with the session of the device that carries it', async () => {
      // Mode separate: one key on weft-wg (IPv4 underlay) and weft-wg-v6 (IPv6 underlay). Before,
      // both rows showed one merged session (the IPv6 device's, read last).
      const r = await runWeftctl(c, daemons[0]!, ['peers', '--json']);
      const rows = (
        JSON.parse(r.stdout) as {
          peers: { family: 4 | 6; wireguard: { device: string; endpoint: string } | null }[];
        }
      ).peers;
      expect(rows.map((x) => [x.family, x.wireguard?.device])).toEqual([
        [4, 'weft-wg'],
        [6, mode === 'separate' ? 'weft-wg-v6' : 'weft-wg'],
      ]);
      const v6Underlay = mode === 'separate';
      expect(rows[1]?.wireguard?.endpoint.startsWith('[')).toBe(v6Underlay);
      expect(rows[0]?.wireguard?.endpoint).toMatch(/^198\.18\.0\.\d:51820$/);
    });

    it('the PSK is never logged (weftd logged the whole network config at start, PSK included)', () => {
      for (const w of daemons) {
        expect(w.logs).toContain('"msg":"network config loaded"');
        expect(w.logs).toContain('"(hidden)"');
        expect(w.logs).not.toContain(PSK);
      }
    });

    it('the IPv6-carrying TUN deleted: recreated in place, both families reach the peer again', async () => {
      const w = daemons[0]!;
      const dev = mode === 'separate' ? 'weft-wg-v6' : 'weft-wg';
      await nsRun(w.host.netns, 'ip', ['link', 'del', dev]);
      await waitFor(
        `weftd to recreate ${dev}`,
        async () =>
          w.logs.includes('"msg":"wireguard device recreated"') || w.child.exitCode !== null,
        20_000,
        200,
      );
      expect(w.child.exitCode).toBeNull();
      const [a, b] = [containers[0]!, containers[1]!];
      await waitFor(
        'IPv4 and IPv6 both ways again',
        async () => {
          for (const [x, dst] of [
            [a, b.ip],
            [a, b.ip6!],
            [b, a.ip],
            [b, a.ip6!],
          ] as const)
            if ((await pingOnce(x, dst)) !== null) return false;
          return true;
        },
        20_000,
        500,
      );
    });
  },
);

describe.skipIf(!runnable)('weftd wireguard: ListenPort held by another process', () => {
  let c: Cluster;
  let blocker: ChildProcess | undefined;

  beforeAll(async () => {
    c = await createCluster(1);
    await putConfig(c, CONFIG);
  }, 60_000);

  afterAll(async () => {
    if (blocker) await stopChild(blocker);
    await c?.destroy();
  });

  it('exits 1 with one message naming the port, the field and the fix', async () => {
    const h = c.topo.hosts[0]!;
    // another program (a wg-quick interface, flannel …) already holds UDP 51820 on the address
    blocker = spawnTracked(
      process.execPath,
      [
        '-e',
        `require('node:dgram').createSocket('udp4').bind(51820, '${h.underlayIp}', () => console.log('bound'))`,
      ],
      { ns: h.netns },
    );
    let out = '';
    blocker.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    await waitFor('the blocker to bind', async () => out.includes('bound'), 10_000, 50);
    const w = startWeftd(c, h);
    const code = await Promise.race([w.exit, sleep(30_000).then(() => 'timeout')]);
    expect(code).toBe(1);
    expect(w.logs).toMatch(
      new RegExp(
        `UDP port 51820 \\(Backend\\.ListenPort\\) on ${h.underlayIp.replace(/\./g, '\\.')} is in use ` +
          'by another process.*stop it, or set another Backend\\.ListenPort',
      ),
    );
    // said once, not repeated by each layer
    expect(w.logs).not.toMatch(/cannot start the WireGuard device: cannot start/);
    // weftctl doctor with no engine running: the weftd check fails, the WireGuard check says why
    // it could not look at sessions (never a pass, never a crash)
    const d = await runWeftctl(c, w, ['doctor', '--json', '--no-probe']);
    expect(d.code).not.toBe(0);
    const byId = new Map(
      (
        JSON.parse(d.stdout) as { checks: { id: string; status: string; message: string }[] }
      ).checks.map((x) => [x.id, x]),
    );
    expect(byId.get('weftd')?.status).toBe('fail');
    expect(byId.get('wireguard')?.status).toBe('warn');
    expect(byId.get('wireguard')?.message).toMatch(/weftd, which runs the engine, does not answer/);
  });
});

describe.skipIf(!runnable)('weftd wireguard: device names the TUN cannot take', () => {
  let c: Cluster;

  beforeAll(async () => {
    c = await createCluster(1);
  }, 60_000);

  afterAll(async () => {
    await c?.destroy();
  });

  const links = async (): Promise<string> =>
    (await nsRun(c.topo.hosts[0]!.netns, 'ip', ['-o', 'link', 'show'])).stdout;

  it('Name equal to NameV6 in Mode separate with both families: exits 3 naming both, no device made', async () => {
    // Before: the IPv4 device started and got its address and route, then the IPv6 one failed on
    // the TUN the first held (EBUSY, "cannot open TUN device wgx" said twice), leaving wgx behind.
    await putConfig(c, {
      Network: '10.5.0.0/16',
      EnableIPv6: true,
      IPv6Network: 'fd05::/48',
      Backend: { Type: 'wireguard', Name: 'wgx', NameV6: 'wgx' },
    });
    const w = startWeftd(c, c.topo.hosts[0]!);
    expect(await Promise.race([w.exit, sleep(30_000).then(() => 'timeout')])).toBe(3);
    expect(w.logs).toMatch(
      /Backend\.Name and Backend\.NameV6 are both \\"wgx\\".*give them different names/,
    );
    expect(await links()).not.toContain('wgx');
  });

  it('Name of an interface that is not a TUN: exits 1 with one message naming the field and the fix', async () => {
    await putConfig(c, { Network: '10.5.0.0/16', Backend: { Type: 'wireguard', Name: 'eth0' } });
    const w = startWeftd(c, c.topo.hosts[0]!);
    expect(await Promise.race([w.exit, sleep(30_000).then(() => 'timeout')])).toBe(1);
    expect(w.logs).toMatch(
      /wireguard: cannot use device eth0 \(Backend\.Name\): an interface named eth0 exists and is not a TUN device.*set another Backend\.Name in the network config, or remove that interface/,
    );
    expect(w.logs).not.toMatch(/cannot open TUN device eth0: cannot open TUN device/);
    expect(await links()).toMatch(/eth0.*state UP/); // untouched
  });
});
