/**
 * weftd's command line (docs/design.md C12): flannel's flag names and defaults (docs/flannel-compat.md §9) plus a
 * few of weft's own, parsed with Go `flag` syntax (`-x`, `--x`, `--x=v`, `--x v`, bools `--x=false`).
 * Every flag not given on the command line is read from `WEFTD_<FLAG>`, then `FLANNELD_<FLAG>`
 * (upper-case, dashes to underscores); empty values are ignored. Pure: no I/O, unit-tested.
 */
import { ConfigError } from '../errors.js';
import {
  optionError as usageError,
  parseGoBool,
  readGoFlag,
  resolveFlag,
} from '../flags/go-flags.js';
import { parseEtcdEndpoints } from '../flags/etcd-flags.js';
import { FLAGS, type DaemonOptions, type FlagSpec } from './flags.js';

export { FLAGS, type DaemonOptions } from './flags.js';

const byName = new Map(FLAGS.map((f) => [f.name, f]));
const ALIASES: Readonly<Record<string, string>> = { h: 'help' };

function envNames(flag: string): string[] {
  const suffix = flag.toUpperCase().replace(/-/g, '_');
  return [`WEFTD_${suffix}`, `FLANNELD_${suffix}`];
}

function optionError(source: string, message: string): ConfigError {
  return usageError(`${source} ${message}`);
}

function parseInt10(source: string, v: string): number {
  if (!/^-?\d{1,9}$/.test(v.trim()))
    throw optionError(source, `must be an integer, got ${JSON.stringify(v)}`);
  return Number(v.trim());
}

function convert(spec: FlagSpec, source: string, raw: string): unknown {
  switch (spec.kind) {
    case 'bool':
      return parseGoBool(source, raw);
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
    if (arg === '--' && i + 1 === argv.length) break;
    if (arg === '--' || !arg.startsWith('-') || arg === '-') {
      throw optionError(
        `argument ${JSON.stringify(arg === '--' ? argv[i + 1] : arg)}`,
        'is not a flag: weftd takes flags only (see --help)',
      );
    }
    const { spec, source, raw, last } = readGoFlag(argv, i, byName, ALIASES, (rawName) =>
      optionError(
        `flag -${arg.startsWith('--') ? '-' : ''}${rawName}`,
        'is not defined: see weftd --help for the list',
      ),
    );
    i = last;
    const value = convert(spec, source, raw);
    const prev =
      spec.kind === 'list' ? (given.get(spec)?.value as string[] | undefined) : undefined;
    given.set(spec, { value: prev ? [...prev, ...(value as string[])] : value, source });
  }
  const out: Record<string, unknown> = {};
  for (const spec of FLAGS)
    out[spec.key] = resolveFlag(spec, given.get(spec), env, envNames(spec.name), convert).value;
  out['etcdEndpoints'] = parseEtcdEndpoints(
    String(out['etcdEndpoints']),
    given.get(byName.get('etcd-endpoints')!)?.source ?? '--etcd-endpoints',
  );
  checkTls(out);
  return Object.freeze(out) as unknown as DaemonOptions;
}

/** docs/flannel-compat.md §18 item 11: a lone cert or key is an error (flannel silently drops TLS). */
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
