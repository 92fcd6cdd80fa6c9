/**
 * Debian's `wireguard-go` (userspace WireGuard, an implementation nobody here wrote) as a test peer,
 * configured with `wg` and `ip` the way flannel's wireguard backend configures a node: device address
 * = the lease subnet's IP/32, a route to the whole network through the device, one peer per lease
 * with AllowedIPs = its subnet and Endpoint = PublicIP:ListenPort (PSK when set).
 *
 * The process runs in the foreground inside the host netns (`WG_PROCESS_FOREGROUND=1`), is tracked
 * (leak check) and stopped by PID. Its UAPI socket lives in the global /var/run/wireguard, so every
 * device gets a unique name.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nsRun, run, spawnTracked, stopChild, waitFor } from './exec.js';

let seq = 0;

export interface WgGoPeer {
  readonly publicKey: string;
  readonly allowedIps: readonly string[];
  readonly endpoint?: string;
  readonly presharedKey?: string;
  readonly persistentKeepalive?: number;
}

export interface WgGoDevice {
  readonly ns: string;
  readonly name: string;
  readonly privateKey: string;
  readonly publicKey: string;
  readonly child: ChildProcess;
  setPeer(peer: WgGoPeer): Promise<void>;
  removePeer(publicKey: string): Promise<void>;
  /** `wg show <dev> dump` peer lines: publicKey → {endpoint, latestHandshake, rx, tx}. */
  peers(): Promise<
    Map<string, { endpoint: string; latestHandshake: number; rx: number; tx: number }>
  >;
  stop(): Promise<void>;
}

export async function genKey(): Promise<{ privateKey: string; publicKey: string }> {
  const privateKey = (await run('wg', ['genkey'])).stdout.trim();
  const publicKey = (await run('wg', ['pubkey'], { input: privateKey + '\n' })).stdout.trim();
  return { privateKey, publicKey };
}

/**
 * Starts wireguard-go in `ns` and configures it flannel-style: `address` (subnet IP/32), `network`
 * routed through the device, `mtu`, `listenPort`.
 */
export async function startWireguardGo(opts: {
  ns: string;
  address: string;
  network: string;
  mtu: number;
  listenPort: number;
  key?: { privateKey: string; publicKey: string };
}): Promise<WgGoDevice> {
  const name = `wgo${process.pid.toString(36)}${seq++}`.slice(0, 15);
  const key = opts.key ?? (await genKey());
  const dir = mkdtempSync(join(tmpdir(), 'weft-wgo-'));
  const keyFile = join(dir, 'key');
  writeFileSync(keyFile, key.privateKey + '\n', { mode: 0o600 });
  const child = spawnTracked('wireguard-go', [name], {
    ns: opts.ns,
    env: { ...process.env, WG_PROCESS_FOREGROUND: '1', LOG_LEVEL: 'error' },
  });
  const sock = `/var/run/wireguard/${name}.sock`;
  const stop = async (): Promise<void> => {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(`wireguard-go ${name} socket`, () => existsSync(sock), 10_000, 50);
    await nsRun(opts.ns, 'wg', [
      'set',
      name,
      'private-key',
      keyFile,
      'listen-port',
      String(opts.listenPort),
    ]);
    await run('ip', ['-n', opts.ns, 'addr', 'add', opts.address, 'dev', name]);
    await run('ip', ['-n', opts.ns, 'link', 'set', name, 'mtu', String(opts.mtu), 'up']);
    await run('ip', ['-n', opts.ns, 'route', 'add', opts.network, 'dev', name]);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    ns: opts.ns,
    name,
    privateKey: key.privateKey,
    publicKey: key.publicKey,
    child,
    async setPeer(p) {
      const args = ['set', name, 'peer', p.publicKey, 'allowed-ips', p.allowedIps.join(',')];
      if (p.endpoint) args.push('endpoint', p.endpoint);
      if (p.persistentKeepalive) args.push('persistent-keepalive', String(p.persistentKeepalive));
      if (p.presharedKey) {
        const f = join(dir, 'psk');
        writeFileSync(f, p.presharedKey + '\n', { mode: 0o600 });
        args.push('preshared-key', f);
      }
      await nsRun(opts.ns, 'wg', args);
    },
    async removePeer(publicKey) {
      await nsRun(opts.ns, 'wg', ['set', name, 'peer', publicKey, 'remove']);
    },
    async peers() {
      const out = (await nsRun(opts.ns, 'wg', ['show', name, 'dump'])).stdout.trim().split('\n');
      const m = new Map<
        string,
        { endpoint: string; latestHandshake: number; rx: number; tx: number }
      >();
      for (const line of out.slice(1)) {
        const f = line.split('\t');
        m.set(f[0] ?? '', {
          endpoint: f[2] ?? '',
          latestHandshake: Number(f[4] ?? 0),
          rx: Number(f[5] ?? 0),
          tx: Number(f[6] ?? 0),
        });
      }
      return m;
    },
    stop,
  };
}
