/**
 * weftctl's command line: `weftctl <command> [subcommand] [args…] [flags]`, flags in Go `flag` syntax
 * like weftd (`-x`, `--x`, `--x=v`, `--x v`, bools `--x=false`), anywhere on the line. Each common flag
 * not given is read from `WEFTCTL_<FLAG>`, then `WEFTD_<FLAG>`, then `FLANNELD_<FLAG>` (so on a host
 * configured for weftd or flanneld, weftctl finds the same etcd). Pure: no I/O, unit-tested.
 */
import {
  optionError as usageError,
  parseGoBool,
  readGoFlag,
  resolveFlag,
} from '../flags/go-flags.js';
import { BASE_URL, ETCD_FLAGS, parseEtcdEndpoints, type EtcdOptions } from '../flags/etcd-flags.js';

export const COMMANDS = [
  'status',
  'leases',
  'lease',
  'config',
  'peers',
  'doctor',
  'trace',
  'ping',
  'cleanup',
  'docker-opts',
  'help',
  'version',
] as const;
export type CommandName = (typeof COMMANDS)[number];

/** The parsed command line; each field's flag and meaning are in CLI_FLAGS below. */
export interface CliOptions extends EtcdOptions {
  readonly command: CommandName;
  /** Words after the command (subcommand and arguments). */
  readonly args: readonly string[];
  readonly json: boolean;
  /** Base URL of weftd's health server, e.g. http://127.0.0.1:8081 (null: not checked). */
  readonly healthzUrl: string | null;
  readonly timeoutMs: number;
  readonly count: number;
  readonly interval: number;
  readonly fromContainer: string | null;
  readonly publicIp: string | null;
  readonly file: string | null;
  readonly noProbe: boolean;
  readonly color: 'auto' | 'always' | 'never';
  readonly help: boolean;
  readonly flannel: boolean;
  readonly yes: boolean;
  readonly output: string | null;
  readonly wait: number;
}

type Kind = 'string' | 'bool' | 'int' | 'number';

interface FlagSpec {
  readonly name: string;
  readonly key: keyof CliOptions;
  readonly kind: Kind;
  readonly def: string | boolean | number | null;
  readonly help: string;
  /** Read from WEFTCTL_/WEFTD_/FLANNELD_ variables (common flags) or only WEFTCTL_. */
  readonly shared?: boolean;
  readonly check?: (value: never) => string | undefined;
}

/** A row of the table below: the option key is the flag's name in camelCase unless `more` names it. */
function flag(
  name: string,
  kind: Kind,
  def: FlagSpec['def'],
  help: string,
  more: Partial<FlagSpec> = {},
): FlagSpec {
  const key = name.replace(/-(\w)/g, (_, c: string) => c.toUpperCase()) as keyof CliOptions;
  return { name, key, kind, def, help, ...more };
}

/** A check that passes null and what `re` matches, else says `want`. */
const matching = (re: RegExp, want: string) => (v: string | null) =>
  v === null || re.test(v) ? undefined : want;

const CLI_FLAGS: readonly FlagSpec[] = [
  flag('json', 'bool', false, 'print JSON instead of tables'),
  ...ETCD_FLAGS.map((row) => ({ ...row, shared: true })),
  flag(
    'healthz-url',
    'string',
    null,
    "weftd's health server (default from --healthz-port: http://127.0.0.1:<port>)",
    { check: matching(BASE_URL, 'must be like http://127.0.0.1:8081') },
  ),
  flag('healthz-port', 'int', null, "weftd's --healthz-port (0 = do not check weftd)", {
    key: 'healthzUrl',
    shared: true,
  }),
  flag('timeout', 'number', 3, 'seconds to wait for each etcd request, health check and probe', {
    key: 'timeoutMs',
    check: (v: number) => (v > 0 && v <= 120 ? undefined : 'must be between 0 and 120 seconds'),
  }),
  flag('count', 'int', 5, 'ping: echo requests to send'),
  flag('interval', 'number', 0.2, 'ping: seconds between requests (≥ 0.002)', {
    check: (v: number) => (v >= 0.002 && v <= 60 ? undefined : 'must be 0.002..60 seconds'),
  }),
  flag(
    'from-container',
    'string',
    null,
    "ping: from this container's network namespace (name or /proc/<pid>/ns/net path)",
    { check: matching(/^[A-Za-z0-9_.\-/]{1,255}$/, 'must be a netns name or path') },
  ),
  flag(
    'public-ip',
    'string',
    null,
    'lease reserve: the public IP of the host the subnet is reserved for',
  ),
  flag('file', 'string', null, "config set: read JSON from a file ('-' = stdin)"),
  flag('no-probe', 'bool', false, 'doctor: skip underlay probes'),
  flag('color', 'string', 'auto', 'auto, always or never', {
    check: matching(/^(auto|always|never)$/, 'must be auto, always or never'),
  }),
  flag('help', 'bool', false, 'print help'),
  flag('flannel', 'bool', false, "cleanup: flannel's leftovers"),
  flag('yes', 'bool', false, 'cleanup: remove (else only show)'),
  flag('output', 'string', null, 'docker-opts: write the env file here (default stdout)'),
  flag('wait', 'int', 0, 'docker-opts: seconds to wait for subnet.env', {
    check: (v: number) => (v <= 3600 ? undefined : 'must be 0..3600'),
  }),
];

const byName = new Map(CLI_FLAGS.map((f) => [f.name, f]));
const ALIASES: Readonly<Record<string, string>> = { h: 'help', j: 'json', c: 'count' };

function envNames(spec: FlagSpec): string[] {
  const suffix = spec.name.toUpperCase().replace(/-/g, '_');
  return spec.shared
    ? [`WEFTCTL_${suffix}`, `WEFTD_${suffix}`, `FLANNELD_${suffix}`]
    : [`WEFTCTL_${suffix}`];
}

/** The numeric kinds: the text each accepts and what the error calls it. */
const NUMERIC = {
  int: [/^\d{1,9}$/, 'a whole number'],
  number: [/^\d{1,9}(\.\d{1,6})?$/, 'a number'],
} as const;

function convert(spec: FlagSpec, source: string, raw: string): string | boolean | number {
  if (spec.kind === 'bool') return parseGoBool(source, raw);
  if (spec.kind === 'string') return raw;
  const [re, what] = NUMERIC[spec.kind];
  if (!re.test(raw.trim()))
    throw usageError(`${source} must be ${what}, got ${JSON.stringify(raw)}`);
  return Number(raw.trim());
}

/**
 * Parses argv (without node and the script) and the environment. Throws ConfigError E_OPTION_INVALID
 * naming the flag or variable, what is wrong and the fix (weftctl exits 2).
 */
export function parseCliOptions(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): CliOptions {
  const words: string[] = [];
  const given = new Map<FlagSpec, { value: string | boolean | number; source: string }>();
  let onlyWords = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (onlyWords || !arg.startsWith('-') || arg === '-' || /^-\d/.test(arg)) {
      words.push(arg);
      continue;
    }
    if (arg === '--') {
      onlyWords = true;
      continue;
    }
    const { spec, source, raw, last } = readGoFlag(argv, i, byName, ALIASES, () =>
      usageError(`flag ${arg.split('=')[0]} is not defined: see weftctl --help`),
    );
    i = last;
    given.set(spec, { value: convert(spec, source, raw), source });
  }
  const out: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  for (const spec of CLI_FLAGS) {
    const { value, source } = resolveFlag(spec, given.get(spec), env, envNames(spec), convert);
    if (spec.name === 'healthz-port') {
      // Only fills --healthz-url when that was not given; 0 = do not check weftd.
      if (source !== null && out['healthzUrl'] === null) {
        const port = value as number;
        if (port > 65535) throw usageError(`${source}=${port} is invalid: must be 0..65535`);
        out['healthzUrl'] = port === 0 ? null : `http://127.0.0.1:${port}`;
      }
      continue;
    }
    out[spec.key] = value;
    if (source !== null) sources[spec.key] = source;
  }
  out['etcdEndpoints'] = parseEtcdEndpoints(
    String(out['etcdEndpoints']),
    sources['etcdEndpoints'] ?? '--etcd-endpoints',
  );
  out['etcdPrefix'] = String(out['etcdPrefix']).replace(/\/+$/, '');
  out['timeoutMs'] = Math.round((out['timeoutMs'] as number) * 1000);
  if (typeof out['healthzUrl'] === 'string')
    out['healthzUrl'] = (out['healthzUrl'] as string).replace(/\/$/, '');
  const count = out['count'] as number;
  if (count < 1 || count > 100000)
    throw usageError(`--count=${count} is invalid: must be 1..100000`);

  const command = words.shift() ?? 'help';
  if (!(COMMANDS as readonly string[]).includes(command))
    throw usageError(`unknown command ${JSON.stringify(command)}: one of ${COMMANDS.join(', ')}`);
  // `peers --output=json` printed a table: kubectl's habit met docker-opts' file flag, silently. The
  // other command flags stay harmless elsewhere (wrapper scripts pass e.g. --no-probe to every command).
  const output = given.get(byName.get('output')!);
  if (output && command !== 'docker-opts')
    throw usageError(
      `${output.source} applies to docker-opts only (the file to write), not to ${command}: for JSON output use --json`,
    );
  out['command'] = command;
  out['args'] = words;
  return Object.freeze(out) as unknown as CliOptions;
}

export function renderCliHelp(): string {
  const lines = [
    'usage: weftctl <command> [arguments] [flags]',
    '',
    'commands:',
    '  status                          this host: lease, device, weftd health, etcd, subnet.env',
    '  leases                          every lease in etcd (reservations marked)',
    '  lease reserve <subnet> --public-ip=<ip>   make a subnet a reservation (never expires)',
    '  lease release <subnet>          delete a reservation',
    "  config get | validate [json] | set [json]  the network config, checked with weftd's rules",
    '  peers                           each peer as this kernel sees it, with a verdict',
    '  doctor                          the whole checklist, each finding with its fix',
    '  trace <src-ip> <dst-ip>         the path a packet takes through the overlay',
    '  ping <overlay-ip> [--from-container=<netns>]  ICMP echo through the overlay',
    "  cleanup --flannel [--yes]       show (remove with --yes) flannel's leftovers on this host",
    '  docker-opts [--output=<file>]   subnet.env as dockerd options (mk-docker-opts.sh format)',
    '',
    'flags (env: WEFTCTL_<FLAG>; etcd and file flags also WEFTD_<FLAG>, FLANNELD_<FLAG>):',
  ];
  for (const f of CLI_FLAGS) {
    const def = f.def === null ? '' : ` (default ${String(f.def)})`;
    lines.push(`  --${f.name.padEnd(18)} ${f.help}${def}`);
  }
  lines.push(
    '',
    'exit codes: 0 ok · 1 a problem was found · 2 usage error · 3 invalid network config ·',
    '            4 etcd unreachable or refused · 5 could not inspect this host · 6 not found',
  );
  return lines.join('\n') + '\n';
}
