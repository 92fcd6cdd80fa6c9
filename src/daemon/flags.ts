/**
 * The table of weftd's flags: name, option key, kind, default, help and validation. Flannel's names and
 * defaults (docs/flannel-compat.md §9) plus weft's own; the etcd rows are
 * shared with weftctl (src/flags/etcd-flags.ts). Parsing lives in options.ts.
 */
import { isIP } from 'node:net';
import { peerAddressProblem } from '../backend/peer-check.js';
import type { LogLevel } from '../log/logger.js';
import { ETCD_FLAGS, type EtcdOptions } from '../flags/etcd-flags.js';
import { DEFAULT_DAEMON_SOCKET, MAX_SOCKET_PATH } from '../cni/netconf.js';

export interface DaemonOptions extends EtcdOptions {
  readonly iface: readonly string[];
  readonly ifaceRegex: readonly string[];
  readonly ifaceCanReach: string | null;
  readonly publicIp: string | null;
  readonly publicIpv6: string | null;
  /** Minutes before expiry at which the lease is renewed (flannel: 1..1439). */
  readonly subnetLeaseRenewMargin: number;
  /** Lease TTL in seconds; null = the manager's default (24 h, flannel's constant). */
  readonly subnetLeaseTtl: number | null;
  readonly ipMasq: boolean;
  readonly ipMasqFullyRandomDisable: boolean;
  readonly iptablesForwardRules: boolean;
  /** Seconds between checks that the firewall rules are still in place. */
  readonly iptablesResync: number;
  readonly healthzIp: string;
  /** 0 = no health server. */
  readonly healthzPort: number;
  /** 0 = no separate metrics server (/metrics is also served on the health port). */
  readonly metricsPort: number;
  /** Seconds between full reconciles of the dataplane by the backend. */
  readonly resyncPeriod: number;
  readonly stateDir: string;
  /** weftd's CNI socket for the `weft` plugin's shim; '' = off (the plugin then runs standalone). */
  readonly cniSocket: string;
  readonly logLevel: LogLevel;
  readonly help: boolean;
  readonly version: boolean;
}

export type Kind = 'string' | 'bool' | 'int' | 'list';

export interface FlagSpec {
  readonly name: string;
  readonly key: keyof DaemonOptions;
  readonly kind: Kind;
  readonly def: string | boolean | number | null | readonly string[];
  readonly help: string;
  /** Returns an error text (what is wrong and the fix) or undefined. */
  readonly check?: (value: never) => string | undefined;
}

/**
 * An address this host publishes in its lease: of the family, and one every peer accepts (the rule of
 * src/backend/peer-check.ts). Node's isIP also takes a zone (`fe80::1%eth0`), which no lease can
 * carry, and multicast, `::`, loopback or v4-mapped addresses, which every peer refuses: weftd would
 * run unreachable in that family, or stop on writing its lease with an error naming no flag.
 */
const ipOf = (family: 4 | 6, what: string) => (v: string | null) => {
  if (v === null) return undefined;
  if (isIP(v) !== family) return `must be an IPv${family} address (${what})`;
  if (v.includes('%'))
    return `must be an IPv${family} address without a zone: other hosts cannot use one (${what})`;
  const problem = peerAddressProblem(v, []);
  return problem === null
    ? undefined
    : `must be a unicast address other hosts can send to (${what}): every peer would refuse this one (${problem})`;
};
const range = (lo: number, hi: number, unit: string) => (v: number) =>
  v >= lo && v <= hi ? undefined : `must be between ${lo} and ${hi}${unit}`;

const ROWS = [
  {
    name: 'iface',
    kind: 'list',
    def: [],
    help: 'interface (name or IP) for inter-host traffic; repeatable, first usable wins',
  },
  {
    name: 'iface-regex',
    kind: 'list',
    def: [],
    help: 'regex matched against interface IPs, then names; repeatable',
    check: (v: readonly string[]) => {
      for (const r of v) {
        try {
          new RegExp(r);
        } catch {
          return `${JSON.stringify(r)} is not a valid regular expression`;
        }
      }
      return undefined;
    },
  },
  {
    name: 'iface-can-reach',
    kind: 'string',
    def: null,
    help: 'use the interface of the route to this IP',
    check: (v: string | null) => (v === null || isIP(v) ? undefined : 'must be an IP address'),
  },
  {
    name: 'public-ip',
    kind: 'string',
    def: null,
    help: 'IPv4 address other hosts reach this one on (default: the interface address)',
    check: ipOf(4, 'e.g. 198.18.0.1'),
  },
  {
    name: 'public-ipv6',
    kind: 'string',
    def: null,
    help: 'IPv6 address other hosts reach this one on',
    check: ipOf(6, 'e.g. fd18::1'),
  },
  {
    name: 'subnet-lease-renew-margin',
    kind: 'int',
    def: 60,
    help: 'renew the lease this many minutes before it expires (1..1439)',
    check: range(1, 1439, ' minutes'),
  },
  {
    name: 'subnet-lease-ttl',
    kind: 'int',
    def: null,
    help: 'lease TTL in seconds (default 86400; short values are for tests)',
    check: (v: number | null) =>
      v === null || (v >= 5 && v <= 86400 * 7) ? undefined : 'must be 5..604800 seconds',
  },
  {
    name: 'ip-masq',
    kind: 'bool',
    def: false,
    help: 'masquerade traffic leaving the overlay',
  },
  {
    name: 'ip-masq-fully-random-disable',
    kind: 'bool',
    def: false,
    help: 'masquerade without fully-random port allocation',
  },
  {
    name: 'iptables-forward-rules',
    kind: 'bool',
    def: true,
    help: 'accept forwarded traffic from and to the overlay network',
  },
  {
    name: 'iptables-resync',
    kind: 'int',
    def: 5,
    help: 'seconds between checks that the firewall rules are in place',
    check: range(1, 3600, ' seconds'),
  },
  {
    name: 'healthz-ip',
    kind: 'string',
    def: '0.0.0.0',
    help: 'address of the health server',
    check: (v: string) => (isIP(v) ? undefined : 'must be an IP address'),
  },
  {
    name: 'healthz-port',
    kind: 'int',
    def: 0,
    help: 'port of /healthz, /readyz and /metrics (0 = off)',
    check: range(0, 65535, ''),
  },
  {
    name: 'metrics-port',
    kind: 'int',
    def: 0,
    help: 'separate port for /metrics on --healthz-ip (0 = off)',
    check: range(0, 65535, ''),
  },
  {
    name: 'resync-period',
    kind: 'int',
    def: 60,
    help: 'seconds between full reconciles of routes, neighbours and FDB',
    check: range(1, 86400, ' seconds'),
  },
  {
    name: 'state-dir',
    kind: 'string',
    def: '/var/lib/weft',
    help: 'directory for state that outlives the daemon (e.g. the VTEP MAC)',
    check: (v: string) => (v.length > 0 ? undefined : 'must be a directory path'),
  },
  {
    name: 'cni-socket',
    kind: 'string',
    def: DEFAULT_DAEMON_SOCKET,
    help: 'unix socket serving the weft CNI plugin in-process ("" = off)',
    check: (v: string) =>
      v === '' || (v.startsWith('/') && Buffer.byteLength(v) <= MAX_SOCKET_PATH)
        ? undefined
        : `must be an absolute path of at most ${MAX_SOCKET_PATH} bytes, or "" for off`,
  },
  {
    name: 'log-level',
    kind: 'string',
    def: 'info',
    help: 'debug, info, warn or error',
    check: (v: string) =>
      ['debug', 'info', 'warn', 'error'].includes(v)
        ? undefined
        : 'must be debug, info, warn or error',
  },
  { name: 'help', kind: 'bool', def: false, help: 'print this help and exit' },
  { name: 'version', kind: 'bool', def: false, help: 'print the version and exit' },
] as const satisfies readonly Omit<FlagSpec, 'key'>[];

type CamelCase<S extends string> = S extends `${infer H}-${infer T}`
  ? `${H}${Capitalize<CamelCase<T>>}`
  : S;
/** A row's option key: its name in camelCase (`iface-can-reach` → ifaceCanReach; a typo fails the build). */
const keyOf = <N extends string>(name: N): CamelCase<N> =>
  name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as CamelCase<N>;

export const FLAGS: readonly FlagSpec[] = [
  ...ETCD_FLAGS,
  ...ROWS.map((r) => ({ ...r, key: keyOf(r.name) })),
];
