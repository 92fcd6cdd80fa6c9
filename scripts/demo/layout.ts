/**
 * Names, addresses and paths of the demo cluster. The layout is the one of the test topology
 * (test/helpers/netns.ts): hosts are network namespaces with `eth0` 198.18.0.<i>/24 on a bridge `br0` in
 * an underlay namespace that holds 198.18.0.254, where the demo's etcd listens. Every name starts with
 * `weft-demo` (plus `-<WEFT_DEMO_ID>` when set, so a test can run its own demo beside a user's).
 * Nothing is created in the root network namespace.
 *
 *   [weft-demo-h1 eth0 198.18.0.1]--vh1--+
 *   [weft-demo-h2 eth0 198.18.0.2]--vh2--+-- br0 198.18.0.254 in [weft-demo-ul] (etcd :2379)
 *   [weft-demo-h3 eth0 198.18.0.3]--vh3--+
 *   each host: bridge weft-demo0 (made by the CNI bridge plugin) -- containers weft-demo-h<i>-c1, -c2
 */
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../..');
export const HOSTS = 3;
export const CONTAINERS_PER_HOST = 2;
export const ETCD_IP = '198.18.0.254';
export const ETCD_URL = `http://${ETCD_IP}:2379`;
export const ETCD_PREFIX = '/coreos.com/network';
export const NETWORK = '10.244.0.0/16';
export const CNI_NETWORK_NAME = 'weft-demo';
export const CNI_BRIDGE = 'weft-demo0';
export const BACKENDS = ['vxlan', 'host-gw', 'udp', 'wireguard'] as const;
export type DemoBackend = (typeof BACKENDS)[number];

export interface Layout {
  /** `weft-demo` or `weft-demo-<id>` */
  readonly prefix: string;
  readonly stateDir: string;
  readonly underlayNs: string;
  hostNs(i: number): string;
  containerNs(host: number, n: number): string;
  hostIp(i: number): string;
  hostDir(i: number): string;
  readonly cniBinDir: string;
  readonly etcdDataDir: string;
  readonly pidDir: string;
  readonly logDir: string;
  /** Matches exactly the namespaces this layout creates (and no other demo's). */
  ownsNetns(name: string): boolean;
}

const ID_RE = /^[a-z0-9]{1,12}$/;

export function layoutFromEnv(env: NodeJS.ProcessEnv = process.env): Layout {
  const id = env['WEFT_DEMO_ID'] ?? '';
  if (id !== '' && !ID_RE.test(id)) {
    throw new Error(
      `WEFT_DEMO_ID must be 1-12 lower-case letters or digits, got ${JSON.stringify(id)}`,
    );
  }
  const prefix = id ? `weft-demo-${id}` : 'weft-demo';
  const stateDir = resolve(env['WEFT_DEMO_STATE_DIR'] || join('/run', prefix));
  if (!stateDir.includes('weft-demo')) {
    // `down` deletes this directory recursively: refuse anything that is not plainly the demo's own.
    throw new Error(`WEFT_DEMO_STATE_DIR must contain "weft-demo" in its path, got ${stateDir}`);
  }
  const owned = new RegExp(`^${prefix}-(ul|h\\d+|h\\d+-c\\d+)$`);
  return {
    prefix,
    stateDir,
    underlayNs: `${prefix}-ul`,
    hostNs: (i) => `${prefix}-h${i}`,
    containerNs: (h, n) => `${prefix}-h${h}-c${n}`,
    hostIp: (i) => `198.18.0.${i}`,
    hostDir: (i) => join(stateDir, `h${i}`),
    cniBinDir: join(stateDir, 'cni-bin'),
    etcdDataDir: join(stateDir, 'etcd'),
    pidDir: join(stateDir, 'pids'),
    logDir: join(stateDir, 'logs'),
    ownsNetns: (name) => owned.test(name),
  };
}
