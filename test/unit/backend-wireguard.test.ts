/**
 * Pure parts of backend `wireguard`: flannel's config keys, the lease → peer mapping with hostile
 * leases, the private key file (0600, stable, never replaced silently), and weftctl's reading of the
 * engine's metrics with doctor's two WireGuard checks.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Lease } from '../../src/lease/lease.js';
import { parseWireguardConfig, WG_OVERHEAD } from '../../src/backend-wireguard/config.js';
import {
  planWgPeer,
  wgClaims,
  wgDeviceLayout,
  wgLiveId,
  type DeviceScope,
  type WgPeerScope,
} from '../../src/backend-wireguard/plan.js';
import { planPeers } from '../../src/backend/peer-plan.js';
import { peerVerdicts } from '../../src/cli/peers.js';
import { loadOrCreateKey } from '../../src/backend-wireguard/key.js';
import { exitFor } from '../../src/daemon/exit-codes.js';
import type { WeftError } from '../../src/errors.js';
import { wgFindings, wgLiveFromMetrics, wgDoctorChecks } from '../../src/cli/wireguard-view.js';
import { parseNetworkConfig } from '../../src/subnet/config.js';

const KEY = (n: number): string => Buffer.alloc(32, n).toString('base64');

function lease(n: number, over: Partial<Lease['attrs']> = {}, subnet = `10.5.${n}.0/24`): Lease {
  return {
    key: `10.5.${n}.0-24`,
    subnet,
    subnet6: null,
    attrs: {
      publicIp: `198.18.0.${n}`,
      publicIpv6: null,
      backendType: 'wireguard',
      backendData: { PublicKey: KEY(n) },
      ...over,
    },
    expiration: new Date(Date.now() + 86_000_000),
  };
}

const dev: DeviceScope = {
  device: 'weft-wg',
  underlay: 4,
  port: 51820,
  v4: { network: '10.5.0.0/16', subnetLen: 24, ownSubnet: '10.5.1.0/24' },
  v6: null,
  keyFrom: 'v4',
  ownIps: ['198.18.0.1'],
  ownKey: { publicKey: KEY(1), file: '/var/lib/weft/wireguard.key' },
  psk: null,
  persistentKeepalive: 25,
};
const scope: WgPeerScope = { devices: [dev], separate: true };

describe('wireguard config (flannel keys)', () => {
  it('fills flannel defaults', () => {
    const c = parseWireguardConfig({ Type: 'wireguard' });
    expect(c).toMatchObject({
      listenPort: 51820,
      listenPortV6: 51821,
      psk: null,
      persistentKeepalive: 0,
      mode: 'separate',
      engine: 'auto',
      name: 'weft-wg',
    });
    expect(WG_OVERHEAD).toBe(80);
  });
  it('reads every key case-insensitively', () => {
    const psk = KEY(9);
    const c = parseWireguardConfig({
      type: 'wireguard',
      listenport: 4000,
      ListenPortV6: 4001,
      PSK: psk,
      PersistentKeepaliveInterval: 25,
      Mode: 'Auto',
      Engine: 'userspace',
    });
    expect(c).toMatchObject({
      listenPort: 4000,
      listenPortV6: 4001,
      psk,
      persistentKeepalive: 25,
      mode: 'auto',
      engine: 'userspace',
    });
  });
  it("folds keys as Go does (flannel reads 'PſK' as PSK: a weft node must not run without it)", () => {
    const psk = KEY(9);
    expect(
      parseWireguardConfig({ Type: 'wireguard', 'P\u017fK': psk, 'Li\u017ftenPort': 4000 }),
    ).toMatchObject({ psk, listenPort: 4000 });
  });
  it('rejects bad values naming the key, never echoing the PSK', () => {
    expect(() => parseWireguardConfig({ ListenPort: 70000 })).toThrow(/Backend\.ListenPort/);
    expect(() => parseWireguardConfig({ Mode: 'both' })).toThrow(
      /Backend\.Mode.*separate, auto, ipv4, ipv6/,
    );
    expect(() => parseWireguardConfig({ Engine: 'fast' })).toThrow(/Backend\.Engine/);
    const secretish = 'not-a-key-but-secret-looking-value';
    try {
      parseWireguardConfig({ PSK: secretish });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toMatch(/Backend\.PSK/);
      expect((err as Error).message).not.toContain(secretish);
    }
  });
  it('a network config with the wireguard backend parses', () => {
    const c = parseNetworkConfig('{"Network":"10.5.0.0/16","Backend":{"Type":"wireguard"}}');
    expect(c.backend.type).toBe('wireguard');
  });
});

describe('lease → peer (the planner)', () => {
  it('maps a flannel wireguard lease to a peer: AllowedIPs = subnet, Endpoint = PublicIP:ListenPort', () => {
    const p = planWgPeer(lease(2), scope);
    expect(p).toEqual({
      entries: [
        {
          key: '10.5.2.0-24/weft-wg',
          subnet: '10.5.2.0/24',
          device: 'weft-wg',
          peer: {
            publicKey: KEY(2),
            presharedKey: null,
            endpoint: { address: '198.18.0.2', port: 51820 },
            persistentKeepalive: 25,
            allowedIps: ['10.5.2.0/24'],
          },
        },
      ],
      refused: [],
    });
    // Go's encoding/json matches field names case-insensitively
    expect(
      planWgPeer(lease(2, { backendData: { publickey: KEY(2) } }), scope).entries,
    ).toHaveLength(1);
  });
  it('ignores (does not refuse) a lease of another backend type', () => {
    const p = planWgPeer(lease(2, { backendType: 'vxlan' }), scope);
    expect(p.entries).toEqual([]);
    expect(p.refused).toEqual([]);
    expect(p.ignored).toMatch(/backend type "vxlan" is not wireguard/);
  });
  it.each([
    ['no BackendData', lease(2, { backendData: undefined }), /not an object/],
    ['a bad key', lease(2, { backendData: { PublicKey: 'abc' } }), /not a base64/],
    [
      'an all-zero key',
      lease(2, { backendData: { PublicKey: Buffer.alloc(32).toString('base64') } }),
      /zeros/,
    ],
    [
      // flannel (Go) reads the last one written, KEY(3); weft read the exact spelling, KEY(2)
      'PublicKey in two spellings',
      lease(2, { backendData: { PublicKey: KEY(2), publickey: KEY(3) } }),
      /BackendData names PublicKey twice \("PublicKey", "publickey"\): write it once/,
    ],
    ['our own public IP', lease(2, { publicIp: '198.18.0.1' }), /own/],
    ['a loopback public IP', lease(2, { publicIp: '127.0.0.1' }), /unicast/],
    ['no public IP', lease(2, { publicIp: '0.0.0.0' }), /no IPv4 public address/],
    ['a subnet outside the network', lease(2, {}, '10.6.2.0/24'), /outside/],
    ['our own subnet', lease(2, {}, '10.5.1.0/24'), /overlaps/],
    ['a wider subnet', lease(2, {}, '10.5.0.0/20'), /not \/24/],
  ])('refuses a lease with %s, with the reason', (_what, l, reason) => {
    const p = planWgPeer(l, scope);
    expect(p.entries).toEqual([]);
    expect(p.refused).toHaveLength(1);
    expect(p.refused[0]?.reason).toMatch(reason);
  });
  it('refuses a lease whose key is a low-order X25519 point (the engine could never handshake with it)', () => {
    // libsodium's list of points of small order (bit 255 ignored): X25519 with each gives an
    // all-zero secret. Programmed, such a peer took the lease's routes and showed as "ok" in
    // weftctl peers, while the engine sent it no initiation at all (so doctor was silent too).
    const lowOrder = [
      '0100000000000000000000000000000000000000000000000000000000000000',
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
      '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880', // bit 255 set
      '0000000000000000000000000000000000000000000000000000000000000080',
    ];
    for (const hex of lowOrder) {
      const k = Buffer.from(hex, 'hex').toString('base64');
      const p = planWgPeer(lease(2, { backendData: { PublicKey: k } }), scope);
      expect(p.entries, hex).toEqual([]);
      expect(p.refused[0]?.reason, hex).toMatch(/low-order X25519 point/);
    }
    // a neighbour of one (a valid point) is still a key
    const fine = Buffer.from(lowOrder[1]!, 'hex');
    fine[0] = 2;
    const ok = planWgPeer(lease(2, { backendData: { PublicKey: fine.toString('base64') } }), scope);
    expect(ok.entries).toHaveLength(1);
  });
  it("refuses a lease publishing this host's own key (a cloned key file), naming the file and the fix", () => {
    const p = planWgPeer(lease(2, { backendData: { PublicKey: KEY(1) } }), scope);
    expect(p.entries).toEqual([]);
    expect(p.refused[0]?.reason).toMatch(
      /this host's own public key: two hosts share one private key \(a cloned state dir or VM image\); delete \/var\/lib\/weft\/wireguard\.key on one of them and restart/,
    );
    // the same key written with non-zero padding bits is the same key
    const odd = KEY(1).slice(0, 42) + String.fromCharCode(KEY(1).charCodeAt(42) + 1) + '=';
    expect(planWgPeer(lease(2, { backendData: { PublicKey: odd } }), scope).entries).toEqual([]);
  });
  it('refuses a lease whose public IP lies inside its own subnet (its datagrams would loop through our device)', () => {
    const p = planWgPeer(lease(3, { publicIp: '10.5.3.7' }), scope);
    expect(p.entries).toEqual([]);
    expect(p.refused).toEqual([
      {
        family: 4,
        reason:
          "public IP 10.5.3.7 lies inside the lease's own subnet 10.5.3.0/24 (its datagrams would loop through this host's WireGuard device)",
      },
    ]);
    // elsewhere in the network (e.g. an underlay below SubnetMin) is no loop: a more specific route wins
    expect(planWgPeer(lease(3, { publicIp: '10.5.0.9' }), scope).entries).toHaveLength(1);
  });

  it('reads PublicKey as Go does: any case, a null spelling leaves the other one in place', () => {
    for (const backendData of [
      { publickey: KEY(2) },
      { PublicKey: KEY(2), publickey: null },
      { publickey: KEY(2), PublicKey: null }, // was refused: "null is not a base64 key"
    ]) {
      const p = planWgPeer(lease(2, { backendData }), scope);
      expect(
        p.entries.map((e) => e.peer.publicKey),
        JSON.stringify(backendData),
      ).toEqual([KEY(2)]);
    }
  });
  it('reads a key with non-zero padding bits as Go does, in canonical form (one key, one claim)', () => {
    // "…B=" decodes to the same 32 bytes as "…A=": the engine reports the peer as "…A="
    const odd = KEY(2).slice(0, 42) + String.fromCharCode(KEY(2).charCodeAt(42) + 1) + '=';
    expect(odd).not.toBe(KEY(2));
    expect(Buffer.from(odd, 'base64')).toEqual(Buffer.from(KEY(2), 'base64'));
    const p = planWgPeer(lease(3, { backendData: { PublicKey: odd } }), scope);
    expect(p.entries.map((e) => e.peer.publicKey)).toEqual([KEY(2)]);
    const both = planPeers(
      [lease(2), lease(3, { backendData: { PublicKey: odd } })],
      (l) => planWgPeer(l, scope),
      wgClaims,
    );
    expect(both.entries).toHaveLength(1);
    expect(both.refused[0]?.reason).toMatch(/already holds its public key/);
  });
  it('one key or one subnet claimed twice: the shared claim order decides (latest expiry wins)', () => {
    const old = { ...lease(2), expiration: new Date(Date.now() + 1000) };
    const dupKey = lease(3, { backendData: { PublicKey: KEY(2) } });
    const dupSubnet = { ...lease(5), key: '10.5.4.0-24-again', subnet: '10.5.4.0/24' };
    const p = planPeers(
      [old, dupKey, lease(4), { ...dupSubnet, expiration: new Date(Date.now() + 2000) }],
      (l) => planWgPeer(l, scope),
      wgClaims,
    );
    expect(p.entries.map((e) => e.peer.publicKey).sort()).toEqual([KEY(2), KEY(4)].sort());
    expect(p.entries.find((e) => e.peer.publicKey === KEY(2))?.peer.endpoint?.address).toBe(
      '198.18.0.3',
    );
    const why = new Map(p.refused.map((r) => [r.lease.key, r.reason]));
    expect(why.get(old.key)).toMatch(/already holds its public key/);
    expect(why.get(dupSubnet.key)).toMatch(/already holds the route to 10\.5\.4\.0\/24/);
    // an incumbent (programmed now) keeps its key against a newcomer that expires later
    const q = planPeers([old, dupKey], (l) => planWgPeer(l, scope), wgClaims, new Set([old.key]));
    expect(q.entries.map((e) => e.peer.endpoint?.address)).toEqual(['198.18.0.2']);
  });
  it('devices per Mode: separate = one per family (own key field), else one for both', () => {
    const dual = parseNetworkConfig(
      '{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd05::/48","Backend":{"Type":"wireguard"}}',
    );
    const sep = wgDeviceLayout(parseWireguardConfig({}), dual, true);
    expect(sep.map((d) => [d.name, d.family, d.port, d.keyFrom])).toEqual([
      ['weft-wg', 4, 51820, 'v4'],
      ['weft-wg-v6', 6, 51821, 'v6'],
    ]);
    const auto = wgDeviceLayout(parseWireguardConfig({ Mode: 'auto' }), dual, false);
    expect(auto.map((d) => [d.name, d.family, d.v4, d.v6, d.keyFrom])).toEqual([
      ['weft-wg', 6, true, true, 'v6'],
    ]);
  });
  it('Mode separate: a bad IPv6 key refuses only the IPv6 device, the IPv4 peer stays', () => {
    const v6dev: DeviceScope = {
      ...dev,
      device: 'weft-wg-v6',
      underlay: 6,
      port: 51821,
      v4: null,
      v6: { network: 'fd05::/48', subnetLen: 64, ownSubnet: 'fd05:0:0:1::/64' },
      keyFrom: 'v6',
      ownIps: [],
    };
    const l: Lease = {
      ...lease(2, { publicIpv6: 'fd00::2', backendV6Data: { PublicKey: 'bad' } }),
      subnet6: 'fd05:0:0:2::/64',
    };
    const p = planWgPeer(l, { devices: [dev, v6dev], separate: true });
    expect(p.entries.map((e) => [e.device, e.subnet])).toEqual([['weft-wg', '10.5.2.0/24']]);
    expect(p.refused).toEqual([{ family: 6, reason: expect.stringMatching(/not a base64/) }]);
  });
});

describe('private key file', () => {
  it('is generated once with mode 0600 and reused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-wgkey-'));
    try {
      const a = loadOrCreateKey(join(dir, 'state'), () => randomBytes(32));
      expect(a.created).toBe(true);
      expect(statSync(a.path).mode & 0o777).toBe(0o600);
      const b = loadOrCreateKey(join(dir, 'state'), () => {
        throw new Error('must not generate again');
      });
      expect(b.created).toBe(false);
      expect(b.privateKey.equals(a.privateKey)).toBe(true);
      // too open: tightened and reported
      chmodSync(a.path, 0o644);
      const warned: string[] = [];
      loadOrCreateKey(
        join(dir, 'state'),
        () => randomBytes(32),
        (m) => warned.push(m),
      );
      expect(statSync(a.path).mode & 0o777).toBe(0o600);
      expect(warned).toEqual([
        expect.stringMatching(
          /open to group or others \(mode 0644\); mode set to 0600\. Whoever read it holds .* to rotate it, delete the file and restart weftd/,
        ),
      ]);
      // garbage: an error naming the file and the fix, the content never echoed
      writeFileSync(a.path, 'supersecretgarbage\n');
      expect(() => loadOrCreateKey(join(dir, 'state'), () => randomBytes(32))).toThrow(
        /wireguard\.key does not hold a base64 WireGuard private key.*delete it/,
      );
      try {
        loadOrCreateKey(join(dir, 'state'), () => randomBytes(32));
      } catch (err) {
        expect((err as Error).message).not.toContain('supersecretgarbage');
      }
      expect(readFileSync(a.path, 'utf8')).toBe('supersecretgarbage\n'); // not replaced silently
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('removes the temp file of a key write that crashed before its rename (it holds an unused private key)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-wgkey-'));
    try {
      const state = join(dir, 'state');
      mkdirSync(state);
      const temp = join(state, 'wireguard.key.4242.0123abcd.tmp');
      writeFileSync(temp, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
      const other = join(state, 'wireguard.key.notes.tmp'); // not the writer's pattern: kept
      writeFileSync(other, 'x');
      const k = loadOrCreateKey(state, () => randomBytes(32));
      expect(k.created).toBe(true);
      expect(existsSync(temp)).toBe(false);
      expect(existsSync(other)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a FIFO, a directory, a symlink or a huge file at the path is an error naming the file, never a hang', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-wgkey-'));
    try {
      const state = join(dir, 'state');
      mkdirSync(state);
      const path = join(state, 'wireguard.key');
      const generate = (): Buffer => {
        throw new Error('must not replace what is there');
      };
      // Without a non-blocking open this call never returns (no writer ever opens the FIFO).
      execFileSync('mkfifo', [path]);
      expect(() => loadOrCreateKey(state, generate)).toThrow(
        /wireguard\.key is not a regular file/,
      );
      rmSync(path);
      mkdirSync(path);
      expect(() => loadOrCreateKey(state, generate)).toThrow(/wireguard\.key/);
      rmSync(path, { recursive: true });
      writeFileSync(path, 'A'.repeat(8 << 20), { mode: 0o600 });
      expect(() => loadOrCreateKey(state, generate)).toThrow(/does not hold a base64 WireGuard/);
      rmSync(path);
      // a symlink to a valid key elsewhere (a readable file of another program): never followed,
      // never used as our key, and the target's mode is not touched
      const other = join(dir, 'other.key');
      writeFileSync(other, randomBytes(32).toString('base64') + '\n', { mode: 0o644 });
      symlinkSync(other, path);
      expect(() => loadOrCreateKey(state, generate)).toThrow(
        /wireguard\.key is a symbolic link: weftd does not follow it.*delete the link/,
      );
      expect(statSync(other).mode & 0o777).toBe(0o644);
      // each of these needs the operator: weftd exits 9, which systemd does not restart
      // (packaging/weftd.service RestartPreventExitStatus), instead of 1 ten times in a row
      for (const make of [
        () => symlinkSync(other, path),
        () => execFileSync('mkfifo', [path]),
        () => mkdirSync(path),
        () => writeFileSync(path, 'not a key\n', { mode: 0o600 }),
      ]) {
        rmSync(path, { recursive: true, force: true });
        make();
        let code: unknown;
        try {
          loadOrCreateKey(state, generate);
        } catch (err) {
          code = (err as WeftError).code;
          expect(exitFor(err).exitCode).toBe(9);
        }
        expect(code).toBe('E_STATE_FILE');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("weftctl's view of the engine", () => {
  const metrics = [
    '# HELP weft_wireguard_peer_last_handshake_seconds x',
    `weft_wireguard_peer_last_handshake_seconds{device="weft-wg",public_key="${KEY(2)}",endpoint="198.18.0.2:51820"} 1700000000`,
    `weft_wireguard_peer_last_handshake_seconds{device="weft-wg",public_key="${KEY(3)}",endpoint="198.18.0.3:51820"} 0`,
    `weft_wireguard_peer_receive_bytes_total{device="weft-wg",public_key="${KEY(2)}"} 1234`,
    `weft_wireguard_peer_handshake_initiations_total{device="weft-wg",public_key="${KEY(3)}"} 7`,
    `weft_wireguard_unknown_key_age_seconds{device="weft-wg",endpoint="198.18.0.4:51820",public_key="${KEY(40)}"} 3`,
    'weft_wireguard_drops_total{device="weft-wg",reason="replay"} 2',
  ].join('\n');
  it('parses per-peer state from /metrics', () => {
    const live = wgLiveFromMetrics(metrics);
    expect(live.peers.get(KEY(2))).toMatchObject({
      endpoint: '198.18.0.2:51820',
      lastHandshakeSec: 1700000000,
      rxBytes: 1234,
    });
    expect(live.drops['replay']).toBe(2);
    // the engine's peers by device, key and endpoint (weftctl's incumbents: wgLiveId in
    // src/backend-wireguard/plan.ts)
    expect(live.programmed).toEqual(
      new Set([`weft-wg|${KEY(2)}|198.18.0.2:51820`, `weft-wg|${KEY(3)}|198.18.0.3:51820`]),
    );
    const planned = planWgPeer(lease(2), scope).entries[0]!;
    expect(live.programmed.has(wgLiveId(planned))).toBe(true);
    expect(
      wgLiveId({
        ...planned,
        peer: { ...planned.peer, endpoint: { address: 'fd00::2', port: 51821 } },
      }),
    ).toBe(`weft-wg|${KEY(2)}|[fd00::2]:51821`);
    expect(live.unknown).toEqual([
      { device: 'weft-wg', endpoint: '198.18.0.4:51820', publicKey: KEY(40), ageSec: 3 },
    ]);
  });
  it('doctor names the peer with a mismatching key and the one that never completes a handshake', () => {
    const live = wgLiveFromMetrics(metrics);
    const f = wgFindings([lease(2), lease(3), lease(4)], live, 51820);
    expect(f.map((x) => x.lease).sort()).toEqual(['10.5.3.0-24', '10.5.4.0-24']);
    expect(f.find((x) => x.lease === '10.5.4.0-24')?.problem).toMatch(
      new RegExp(
        `handshakes with key ${KEY(40).replace(/[+/]/g, '.')}.*publishes ${KEY(4).replace(/[+/]/g, '.')}`,
      ),
    );
    expect(f.find((x) => x.lease === '10.5.3.0-24')?.problem).toMatch(
      /never completed a handshake \(7 initiations/,
    );
    const cfg = parseNetworkConfig('{"Network":"10.5.0.0/16","Backend":{"Type":"wireguard"}}');
    const checks = wgDoctorChecks(cfg, [lease(2), lease(3), lease(4)], { ok: true, live });
    expect(checks.map((c) => c.status)).toEqual(['fail', 'fail']);
    expect(wgDoctorChecks(cfg, [lease(2)], { ok: true, live })[0]?.status).toBe('pass');
  });
  it('Mode separate: each device’s session is checked on its own, with that device’s port', () => {
    // One key on two devices (weft-wg over IPv4, weft-wg-v6 over IPv6). Before, their series were
    // merged by key, the IPv6 device's written last: an IPv4 session that never came up passed.
    const now = 1_800_000_000;
    const text = (v4: number, v6: number) =>
      [
        ['weft-wg', '198.18.0.2:51820', v4],
        ['weft-wg-v6', '[fd18::2]:51821', v6],
      ]
        .flatMap(([dev, ep, hs]) => [
          `weft_wireguard_peer_last_handshake_seconds{device="${dev}",public_key="${KEY(2)}",endpoint="${ep}"} ${hs}`,
          `weft_wireguard_peer_handshake_initiations_total{device="${dev}",public_key="${KEY(2)}"} 4`,
        ])
        .join('\n');
    const l = lease(2, { publicIpv6: 'fd18::2' });
    const cfg = parseNetworkConfig(
      '{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd05::/48","Backend":{"Type":"wireguard"}}',
    );
    const checks = (v4: number, v6: number) =>
      wgDoctorChecks(cfg, [l], { ok: true, live: wgLiveFromMetrics(text(v4, v6)) });
    const v4down = checks(0, now - 10);
    expect(v4down.map((c) => [c.id, c.status])).toEqual([
      ['wireguard:10.5.2.0-24:weft-wg', 'fail'],
    ]);
    expect(v4down[0]?.message).toMatch(/never completed a handshake on weft-wg \(4 initiations/);
    expect(v4down[0]?.fixes?.[0]).toMatch(/UDP 51820 /);
    const v6down = checks(now - 10, 0);
    expect(v6down.map((c) => c.id)).toEqual(['wireguard:10.5.2.0-24:weft-wg-v6']);
    expect(v6down[0]?.fixes?.[0]).toMatch(/UDP 51821 /); // ListenPortV6
    expect(checks(now - 10, now - 5).map((c) => c.status)).toEqual(['pass']);
    // status/peers show the less healthy session of the two
    expect(wgLiveFromMetrics(text(0, now - 10)).peers.get(KEY(2))?.device).toBe('weft-wg');
    expect(wgLiveFromMetrics(text(now - 10, 0)).peers.get(KEY(2))?.device).toBe('weft-wg-v6');
  });
  it('an unknown-key handshake older than the peer’s last handshake with its published key is history, not a mismatch', () => {
    // Seen on a real cluster: host 2 started before host 1 had it as a peer (its first initiation
    // was recorded as an unknown key), and later got a new key file; the engine keeps that first
    // record, so doctor failed a healthy peer forever, asking to restart a weftd that was fine.
    const now = 1_800_000_000;
    const text = (handshake: number, unknownAge: number) =>
      [
        `weft_wireguard_peer_last_handshake_seconds{device="weft-wg",public_key="${KEY(22)}",endpoint="198.18.0.2:51820"} ${handshake}`,
        `weft_wireguard_peer_handshake_initiations_total{device="weft-wg",public_key="${KEY(22)}"} 1`,
        `weft_wireguard_unknown_key_age_seconds{device="weft-wg",endpoint="198.18.0.2:51820",public_key="${KEY(2)}"} ${unknownAge}`,
      ].join('\n');
    const rotated = lease(2, { backendData: { PublicKey: KEY(22) } });
    // the old key's handshake 40 s ago, the new key's 30 s ago: fine
    expect(wgFindings([rotated], wgLiveFromMetrics(text(now - 30, 40)), 51820, now)).toEqual([]);
    // the host handshook with another key after its published one (5 s ago): still named
    const f = wgFindings([rotated], wgLiveFromMetrics(text(now - 30, 5)), 51820, now);
    expect(f.map((x) => x.problem)).toEqual([
      expect.stringMatching(/handshakes with key .* \(5 s ago\) but its lease publishes/),
    ]);
    // and with no handshake at all with the published key, any unknown key from its address is
    const never = wgFindings([rotated], wgLiveFromMetrics(text(0, 400)), 51820, now);
    expect(never.map((x) => x.problem)).toEqual([expect.stringMatching(/handshakes with key/)]);
  });
});

describe("doctor device checks (wireguard): the backend's device plan", () => {
  const run = async (
    cfg: ReturnType<typeof parseNetworkConfig>,
    links: { name: string; mtu: number }[],
    envMtu: number | null,
  ) => {
    const { deviceChecks } = await import('../../src/cli/doctor-kernel.js');
    const eth0 = { index: 2, name: 'eth0', kind: null, mtu: 1500, mac: null, up: true };
    const host = {
      kernelRelease: '6.1.0',
      kernel: {
        links: [
          eth0,
          ...links.map((l, i) => ({ ...l, index: 10 + i, kind: 'tun', mac: null, up: true })),
        ],
        routes: [],
        neighs: [],
        fdb: [],
      },
      addrs: [{ index: 2, cidr: '198.18.0.1/24' }],
      sysctl: {},
      txChecksum: {},
      conntrack: null,
    };
    const i = { own: { lease: lease(1) }, subnetEnv: { mtu: envMtu } } as never;
    return deviceChecks(i, host as never, cfg);
  };

  it('wants the TUN up with MTU = uplink − 80 and FLANNEL_MTU alike', async () => {
    const cfg = parseNetworkConfig('{"Network":"10.5.0.0/16","Backend":{"Type":"wireguard"}}');
    const ok = await run(cfg, [{ name: 'weft-wg', mtu: 1420 }], 1420);
    expect(ok.map((c) => [c.id, c.status])).toEqual([
      ['device:weft-wg', 'pass'],
      ['mtu:weft-wg', 'pass'],
      ['mtu:containers', 'pass'],
    ]);
    const bad = await run(cfg, [{ name: 'weft-wg', mtu: 1450 }], 1450);
    expect(bad[1]?.message).toMatch(/weft-wg MTU is 1450, want 1420 \(uplink eth0 1500 − 80\)/);
    expect(bad[2]?.message).toMatch(/FLANNEL_MTU is 1450, want 1420/);
    expect((await run(cfg, [], null))[0]?.message).toMatch(/weft-wg does not exist/);
    const dual = parseNetworkConfig(
      '{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd05::/48",' +
        '"Backend":{"Type":"wireguard","Mode":"separate"}}',
    );
    expect((await run(dual, [], null)).map((c) => c.id)).toEqual([
      'device:weft-wg',
      'device:weft-wg-v6',
      'mtu:containers',
    ]);
  });
});

describe("weftctl's peer verdicts (wireguard, one device for both families)", () => {
  it('a peer refused for a key another lease holds is refused in both families, never missing', () => {
    const cfg = parseNetworkConfig(
      '{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd05::/48",' +
        '"Backend":{"Type":"wireguard","Mode":"auto"}}',
    );
    const dual = (n: number, key = KEY(n), ttl = 86_000_000): Lease => ({
      key: `10.5.${n}.0-24&fd05:0:0:${n}::-64`,
      subnet: `10.5.${n}.0/24`,
      subnet6: `fd05:0:0:${n}::/64`,
      attrs: {
        publicIp: `198.18.0.${n}`,
        publicIpv6: null,
        backendType: 'wireguard',
        backendData: { PublicKey: key },
        backendV6Data: { PublicKey: key },
      },
      expiration: new Date(Date.now() + ttl),
    });
    const tun = { index: 7, name: 'weft-wg', kind: 'tun', mtu: 1420, mac: null, up: true };
    const route = (dst: string, family: 4 | 6) => ({
      dst,
      family,
      gateway: null,
      oif: 7,
      onlink: false,
      table: 254,
      protocol: 'STATIC',
      type: 'UNICAST',
    });
    const rows = peerVerdicts({
      config: cfg,
      own: dual(1),
      // 3 copies 2's key and expires first; 4 runs with a copy of our own key file
      leases: [dual(1), dual(2), dual(3, KEY(2), 1000), dual(4, KEY(1))],
      kernel: {
        links: [tun as never],
        routes: [route('10.5.0.0/16', 4), route('fd05::/48', 6)] as never[],
        neighs: [],
        fdb: [],
      },
      addrs: [{ index: 2, cidr: '198.18.0.1/24' }],
    });
    expect(rows.map((r) => [r.lease, r.family, r.subnet, r.verdict])).toEqual([
      ['10.5.2.0-24&fd05:0:0:2::-64', 4, '10.5.2.0/24', 'ok'],
      ['10.5.2.0-24&fd05:0:0:2::-64', 6, 'fd05:0:0:2::/64', 'ok'],
      ['10.5.3.0-24&fd05:0:0:3::-64', 4, '10.5.3.0/24', 'refused'],
      ['10.5.3.0-24&fd05:0:0:3::-64', 6, 'fd05:0:0:3::/64', 'refused'],
      ['10.5.4.0-24&fd05:0:0:4::-64', 4, '10.5.4.0/24', 'refused'],
      ['10.5.4.0-24&fd05:0:0:4::-64', 6, 'fd05:0:0:4::/64', 'refused'],
    ]);
    for (const r of rows.filter((x) => x.verdict === 'refused' && x.lease?.startsWith('10.5.3.')))
      expect(r.reason).toMatch(/already holds its public key/);
    for (const r of rows.filter((x) => x.lease?.startsWith('10.5.4.')))
      expect(r.reason).toMatch(/own public key.*delete <state-dir>\/wireguard\.key on one of them/);
  });
});
