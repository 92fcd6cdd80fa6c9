/**
 * weftd's command line (design.md C12): flannel's flag names and defaults (flannel-compat.md §9) plus a
 * few of weft's own, parsed with Go `flag` syntax (`-x`, `--x`, `--x=v`, `--x v`, bools `--x=false`).
 * Every flag not given on the command line is read from `WEFTD_<FLAG>`, then `FLANNELD_<FLAG>`
 * (upper-case, dashes to underscores); empty values are ignored. Pure: no I/O, unit-tested.
 */
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import type { LogLevel } from '../log/logger.js';

export interface DaemonOptions {
  readonly etcdEndpoints: readonly string[];
  readonly etcdPrefix: string;
  readonly etcdKeyfile: string | null;
  readonly etcdCertfile: string | null;
  readonly etcdCafile: string | null;
  readonly etcdUsername: string | null;
  readonly etcdPassword: string | null;
  readonly iface: readonly string[];
  readonly ifaceRegex: readonly string[];
  readonly ifaceCanReach: string | null;
  readonly publicIp: string | null;
  readonly publicIpv6: string | null;
  readonly subnetFile: string;
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
  readonly logLevel: LogLevel;
  readonly help: boolean;
  readonly version: boolean;
}

type Kind = 'string' | 'bool' | 'int' | 'list';

interface FlagSpec {
  readonly name: string;
  readonly key: keyof DaemonOptions;
  readonly kind: Kind;
  readonly def: string | boolean | number | null | readonly string[];
  readonly help: string;
  /** Returns an error text (what is wrong and the fix) or undefined. */
  readonly check?: (value: never) => string | undefined;
}

const ipOf = (family: 4 | 6, what: string) => (v: string | null) =>
  v === null || isIP(v) === family ? undefined : `must be an IPv${family} address (${what})`;
const range = (lo: number, hi: number, unit: string) => (v: number) =>
  v >= lo && v <= hi ? undefined : `must be between ${lo} and ${hi}${unit}`;

export const FLAGS: readonly FlagSpec[] = [
  {
    name: 'etcd-endpoints',
    key: 'etcdEndpoints',
    kind: 'string',
    def: 'http://127.0.0.1:2379',
    help: 'comma-separated etcd v3 endpoints (http:// or https://)',
  },
  {
    name: 'etcd-prefix',
    key: 'etcdPrefix',
    kind: 'string',
    def: '/coreos.com/network',
    help: 'etcd key prefix of the network config and the leases',
    check: (v: string) =>
      v.startsWith('/') && !/\s/.test(v)
        ? undefined
        : 'must be an absolute key like /coreos.com/network',
  },
  {
    name: 'etcd-keyfile',
    key: 'etcdKeyfile',
    kind: 'string',
    def: null,
    help: 'TLS client key file',
  },
  {
    name: 'etcd-certfile',
    key: 'etcdCertfile',
    kind: 'string',
    def: null,
    help: 'TLS client certificate file',
  },
  {
    name: 'etcd-cafile',
    key: 'etcdCafile',
    kind: 'string',
    def: null,
    help: 'TLS CA bundle to verify etcd',
  },
  {
    name: 'etcd-username',
    key: 'etcdUsername',
    kind: 'string',
    def: null,
    help: 'etcd v3 auth user',
  },
  {
    name: 'etcd-password',
    key: 'etcdPassword',
    kind: 'string',
    def: null,
    help: 'etcd v3 auth password',
  },
  {
    name: 'iface',
    key: 'iface',
    kind: 'list',
    def: [],
    help: 'interface (name or IP) for inter-host traffic; repeatable, first usable wins',
  },
  {
    name: 'iface-regex',
    key: 'ifaceRegex',
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
    key: 'ifaceCanReach',
    kind: 'string',
    def: null,
    help: 'use the interface of the route to this IP',
    check: (v: string | null) => (v === null || isIP(v) ? undefined : 'must be an IP address'),
  },
  {
    name: 'public-ip',
    key: 'publicIp',
    kind: 'string',
    def: null,
    help: 'IPv4 address other hosts reach this one on (default: the interface address)',
    check: ipOf(4, 'e.g. 198.18.0.1'),
  },
  {
    name: 'public-ipv6',
    key: 'publicIpv6',
    kind: 'string',
    def: null,
    help: 'IPv6 address other hosts reach this one on',
    check: ipOf(6, 'e.g. fd18::1'),
  },
  {
    name: 'subnet-file',
    key: 'subnetFile',
    kind: 'string',
    def: '/run/flannel/subnet.env',
    help: 'where to write the subnet.env for the CNI plugin',
    check: (v: string) => (v.length > 0 ? undefined : 'must be a file path'),
  },
  {
    name: 'subnet-lease-renew-margin',
    key: 'subnetLeaseRenewMargin',
    kind: 'int',
    def: 60,
    help: 'renew the lease this many minutes before it expires (1..1439)',
    check: range(1, 1439, ' minutes'),
  },
  {
    name: 'subnet-lease-ttl',
    key: 'subnetLeaseTtl',
    kind: 'int',
    def: null,
    help: 'lease TTL in seconds (default 86400; short values are for tests)',
    check: (v: number | null) =>
      v === null || (v >= 5 && v <= 86400 * 7) ? undefined : 'must be 5..604800 seconds',
  },
  {
    name: 'ip-masq',
    key: 'ipMasq',
    kind: 'bool',
    def: false,
    help: 'masquerade traffic leaving the overlay',
  },
  {
    name: 'ip-masq-fully-random-disable',
    key: 'ipMasqFullyRandomDisable',
    kind: 'bool',
    def: false,
    help: 'masquerade without fully-random port allocation',
  },
  {
    name: 'iptables-forward-rules',
    key: 'iptablesForwardRules',
    kind: 'bool',
    def: true,
    help: 'accept forwarded traffic from and to the overlay network',
  },
  {
    name: 'iptables-resync',
    key: 'iptablesResync',
    kind: 'int',
    def: 5,
    help: 'seconds between checks that the firewall rules are in place',
    check: range(1, 3600, ' seconds'),
  },
  {
    name: 'healthz-ip',
    key: 'healthzIp',
    kind: 'string',
    def: '0.0.0.0',
    help: 'address of the health server',
    check: (v: string) => (isIP(v) ? undefined : 'must be an IP address'),
  },
  {
    name: 'healthz-port',
    key: 'healthzPort',
    kind: 'int',
    def: 0,
    help: 'port of /healthz, /readyz and /metrics (0 = off)',
    check: range(0, 65535, ''),
  },
  {
    name: 'metrics-port',
    key: 'metricsPort',
    kind: 'int',
    def: 0,
    help: 'separate port for /metrics on --healthz-ip (0 = off)',
    check: range(0, 65535, ''),
  },
  {
    name: 'resync-period',
    key: 'resyncPeriod',
    kind: 'int',
    def: 60,
    help: 'seconds between full reconciles of routes, neighbours and FDB',
    check: range(1, 86400, ' seconds'),
  },
  {
    name: 'state-dir',
    key: 'stateDir',
    kind: 'string',
    def: '/var/lib/weft',
    help: 'directory for state that outlives the daemon (e.g. the VTEP MAC)',
    check: (v: string) => (v.length > 0 ? undefined : 'must be a directory path'),
  },
  {
    name: 'log-level',
    key: 'logLevel',
    kind: 'string',
    def: 'info',
    help: 'debug, info, warn or error',
    check: (v: string) =>
      ['debug', 'info', 'warn', 'error'].includes(v)
        ? undefined
        : 'must be debug, info, warn or error',
  },
  { name: 'help', key: 'help', kind: 'bool', def: false, help: 'print this help and exit' },
  { name: 'version', key: 'version', kind: 'bool', def: false, help: 'print the version and exit' },
];

const byName = new Map(FLAGS.map((f) => [f.name, f]));
const ALIASES: Readonly<Record<string, string>> = { h: 'help' };

function envNames(flag: string): string[] {
  const suffix = flag.toUpperCase().replace(/-/g, '_');
  return [`WEFTD_${suffix}`, `FLANNELD_${suffix}`];
}

function optionError(source: string, message: string): ConfigError {
  return new ConfigError(`${source} ${message}`, { code: 'E_OPTION_INVALID' });
}

function parseBool(source: string, v: string): boolean {
  const t = v.toLowerCase();
  if (['1', 't', 'true'].includes(t)) return true;
  if (['0', 'f', 'false'].includes(t)) return false;
  throw optionError(source, `must be true or false, got ${JSON.stringify(v)}`);
}

function parseInt10(source: string, v: string): number {
  if (!/^-?\d{1,9}$/.test(v.trim()))
    throw optionError(source, `must be an integer, got ${JSON.stringify(v)}`);
  return Number(v.trim());
}

function convert(spec: FlagSpec, source: string, raw: string): unknown {
  switch (spec.kind) {
    case 'bool':
      return parseBool(source, raw);
    case 'int':
      return parseInt10(source, raw);
    case 'list':
      return [raw];
    case 'string':
      return raw;
  }
}

/**
 * Parses argv (without node and the script) and the environment into frozen options. Throws
 * ConfigError E_OPTION_INVALID naming the flag (or env variable), what is wrong and the fix.
 */
export function parseOptions(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): DaemonOptions {
  const given = new Map<FlagSpec, { value: unknown; source: string }>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      if (i + 1 < argv.length)
        throw optionError(
          `argument ${JSON.stringify(argv[i + 1])}`,
          'is not a flag: weftd takes flags only (see --help)',
        );
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      throw optionError(
        `argument ${JSON.stringify(arg)}`,
        'is not a flag: weftd takes flags only (see --help)',
      );
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const rawName = eq < 0 ? body : body.slice(0, eq);
    const name = ALIASES[rawName] ?? rawName;
    const spec = byName.get(name);
    const source = `--${name}`;
    if (!spec)
      throw optionError(
        `flag -${arg.startsWith('--') ? '-' : ''}${rawName}`,
        'is not defined: see weftd --help for the list',
      );
    let raw: string;
    if (eq >= 0) raw = body.slice(eq + 1);
    else if (spec.kind === 'bool') raw = 'true';
    else {
      const next = argv[i + 1];
      if (next === undefined) throw optionError(source, `needs a value: ${source}=<value>`);
      raw = next;
      i++;
    }
    const value = convert(spec, source, raw);
    const prev = given.get(spec);
    if (spec.kind === 'list' && prev) {
      given.set(spec, { value: [...(prev.value as string[]), ...(value as string[])], source });
    } else {
      given.set(spec, { value, source });
    }
  }
  const out: Record<string, unknown> = {};
  for (const spec of FLAGS) {
    let entry = given.get(spec);
    if (!entry) {
      for (const envName of envNames(spec.name)) {
        const raw = env[envName];
        if (raw === undefined || raw === '') continue;
        entry = {
          value: convert(spec, `environment variable ${envName}`, raw),
          source: `environment variable ${envName}`,
        };
        break;
      }
    }
    const value = entry ? entry.value : spec.def;
    const problem = spec.check?.(value as never);
    if (problem !== undefined) {
      const shown = Array.isArray(value) ? value.join(',') : String(value);
      throw new ConfigError(
        `${entry?.source ?? `--${spec.name}`}=${shown} is invalid: ${problem}`,
        {
          code: 'E_OPTION_INVALID',
        },
      );
    }
    out[spec.key] = value;
  }
  out['etcdEndpoints'] = parseEndpoints(
    String(out['etcdEndpoints']),
    given.get(byName.get('etcd-endpoints')!)?.source,
  );
  checkTls(out);
  return Object.freeze(out) as unknown as DaemonOptions;
}

function parseEndpoints(raw: string, source = '--etcd-endpoints'): readonly string[] {
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0)
    throw optionError(source, 'is empty: give e.g. --etcd-endpoints=http://127.0.0.1:2379');
  for (const ep of list) {
    let url: URL;
    try {
      url = new URL(ep);
    } catch {
      throw optionError(
        source,
        `has an invalid URL ${JSON.stringify(ep)}: use http://host:port or https://host:port`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw optionError(
        source,
        `has ${JSON.stringify(ep)}: only http:// and https:// endpoints are supported`,
      );
    }
  }
  return Object.freeze(list);
}

/** flannel-compat.md §18 item 11: a lone cert or key is an error (flannel silently drops TLS). */
function checkTls(o: Record<string, unknown>): void {
  const key = o['etcdKeyfile'];
  const cert = o['etcdCertfile'];
  if ((key === null) !== (cert === null)) {
    const missingFlag = key === null ? '--etcd-keyfile' : '--etcd-certfile';
    const present = key === null ? '--etcd-certfile' : '--etcd-keyfile';
    throw optionError(
      present,
      `is set but ${missingFlag} is not: give both for TLS client authentication, or neither`,
    );
  }
}

function showDefault(spec: FlagSpec): string {
  const d = spec.def;
  if (d === null || (Array.isArray(d) && d.length === 0)) return '';
  return ` (default ${Array.isArray(d) ? d.join(',') : String(d)})`;
}

/** The --help text: every flag with its default and env names. */
export function renderHelp(): string {
  const lines = [
    'usage: weftd [flags]',
    "  The weft host daemon: leases this host's subnet from etcd (flannel layout) and programs the overlay.",
    '',
    'flags (Go syntax: -flag, --flag, --flag=value, --flag value, --bool=false):',
  ];
  for (const spec of FLAGS) {
    const arg = spec.kind === 'bool' ? '' : spec.kind === 'int' ? ' <n>' : ' <value>';
    lines.push(`  --${spec.name}${arg}`);
    lines.push(
      `        ${spec.help}${showDefault(spec)}${spec.kind === 'list' ? ' [repeatable]' : ''}`,
    );
  }
  lines.push(
    '',
    'Every flag can also be set in the environment as WEFTD_<FLAG> or FLANNELD_<FLAG>',
    '(upper-case, dashes as underscores, e.g. FLANNELD_ETCD_ENDPOINTS); a flag on the command line wins.',
  );
  return lines.join('\n') + '\n';
}
