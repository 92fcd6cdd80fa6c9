/**
 * `weftctl config get | validate [json] | set [json]`: the network config at `<prefix>/config`,
 * checked with weftd's own rules before anything is written — `parseNetworkConfig` (flannel's fields,
 * defaults and limits), the backend type weftd knows, and the backend's own options (vxlan). flannel
 * users write this key with raw etcdctl and find a typo at daemon start; here it never reaches etcd.
 * `set` is a compare-and-swap against the value it validated the leases against.
 */
import { optionError } from '../../flags/go-flags.js';
import { readRegularFile } from '../../files/read-regular.js';
import { parseUdpConfig } from '../../backend-udp/config.js';
import { parseWireguardConfig } from '../../backend-wireguard/config.js';
import { parseVxlanConfig } from '../../backend-vxlan/config.js';
import { ConfigError, WeftError, describeError } from '../../errors.js';
import { nullLogger, type Logger } from '../../log/logger.js';
import { isCompatible } from '../../subnet/allocator.js';
import { parseNetworkConfig, requireEtcdLayout } from '../../subnet/config.js';
import type { NetworkConfig } from '../../subnet/manager.js';
import { parseSubnetKey } from '../../subnet/keys.js';
import { listLeases, withRegistry } from '../etcd-view.js';
import { EXIT } from '../exit-codes.js';
import { keyValues, sanitize, type Cell, type Style } from '../render.js';
import type { CommandContext, CommandOutput } from './context.js';

/** Backend types weftd builds (docs/design.md C3), each with its own options parser (host-gw takes
 *  none). */
const BACKENDS = {
  vxlan: parseVxlanConfig,
  'host-gw': null,
  udp: parseUdpConfig,
  wireguard: parseWireguardConfig,
};

export interface Validation {
  readonly valid: boolean;
  readonly config: NetworkConfig | null;
  readonly error: string | null;
  /** Unknown keys and other things weftd would log as warnings. */
  readonly warnings: readonly string[];
}

/** Validates config text with weftd's rules (pure). */
export function validateConfig(text: string): Validation {
  const warnings: string[] = [];
  const log: Logger = {
    ...nullLogger,
    warn: (msg, fields) => warnings.push(fields ? `${msg} ${JSON.stringify(fields)}` : msg),
    error: (msg) => warnings.push(msg),
    child: () => log,
  };
  try {
    const config = requireEtcdLayout(parseNetworkConfig(text, log));
    const type = config.backend.type as keyof typeof BACKENDS;
    if (!Object.hasOwn(BACKENDS, type))
      throw new ConfigError(
        `Backend.Type ${JSON.stringify(type)} is unknown: use one of ${Object.keys(BACKENDS).join(', ')}`,
        { code: 'E_UNKNOWN_BACKEND' },
      );
    BACKENDS[type]?.(config.backend.raw, (msg, fields) =>
      warnings.push(`${msg} ${JSON.stringify(fields)}`),
    );
    return { valid: true, config, error: null, warnings };
  } catch (err) {
    return { valid: false, config: null, error: describeError(err), warnings };
  }
}

function summary(style: Style, v: Validation): string {
  const c = v.config;
  const pairs: [string, Cell][] = [
    ['valid', v.valid ? { text: 'yes', tone: 'ok' } : { text: `no: ${v.error}`, tone: 'bad' }],
  ];
  if (c) {
    if (c.network)
      pairs.push([
        'network',
        `${c.network} (subnets /${c.subnetLen}, ${c.subnetMin} – ${c.subnetMax})`,
      ]);
    if (c.ipv6Network)
      pairs.push(['ipv6 network', `${c.ipv6Network} (subnets /${c.ipv6SubnetLen})`]);
    pairs.push(['backend', c.backend.type]);
  }
  for (const w of v.warnings) pairs.push(['warning', { text: w, tone: 'warn' }]);
  return keyValues(style, pairs);
}

/** The bound weftctl puts on stdin too (src/cli/main.ts). */
const MAX_CONFIG_BYTES = 1 << 20;

async function inputText(ctx: CommandContext): Promise<string | null> {
  if (ctx.options.file === '-') return ctx.readStdin();
  if (ctx.options.file !== null) {
    // Opened non-blocking, regular files only, read up to one byte past the stdin bound (src/cli/main.ts):
    // a FIFO with no writer or /dev/zero named by mistake fails at once instead of hanging or filling
    // memory.
    const read = await readRegularFile(ctx.options.file, MAX_CONFIG_BYTES + 1);
    if (!read.ok) throw new WeftError('E_IO', `--file: ${read.problem}`);
    if (read.buf.length > MAX_CONFIG_BYTES)
      throw new WeftError(
        'E_IO',
        `--file ${ctx.options.file}: larger than 1 MiB; a network config is a few hundred bytes`,
      );
    return read.buf.toString('utf8');
  }
  const arg = ctx.options.args[1];
  if (arg === '-') return ctx.readStdin();
  return arg ?? null;
}

export async function configCommand(ctx: CommandContext): Promise<CommandOutput> {
  const sub = ctx.options.args[0] ?? 'get';
  if (!['get', 'set', 'validate'].includes(sub))
    throw optionError(`config ${sub}: use config get, config validate [json] or config set <json>`);
  const given = sub === 'get' ? null : await inputText(ctx);
  if (sub === 'set' && given === null)
    throw optionError(
      'config set: give the JSON, e.g. weftctl config set \'{"Network":"10.5.0.0/16"}\' or --file',
    );
  /** A validation's outcome: exit 0 when valid, else 3; `json` goes before the validation's fields. */
  const shown = (v: Validation, json: object, human = summary(ctx.style, v)): CommandOutput => ({
    exitCode: v.valid ? EXIT.ok : EXIT.config,
    json: { ok: v.valid, ...json, ...validationJson(v) },
    human,
  });
  if (given !== null && sub === 'validate')
    return shown(validateConfig(given), { source: 'argument' });
  return withRegistry(ctx.options, async (reg) => {
    const current = await reg.getConfigEntry();
    if (sub !== 'set') {
      if (current.value === null) {
        return {
          exitCode: EXIT.notFound,
          json: {
            ok: false,
            source: 'etcd',
            raw: null,
            valid: false,
            error: 'absent',
            config: null,
            warnings: [],
          },
          human: `no network config at ${ctx.options.etcdPrefix}/config: weftctl config set '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'\n`,
        };
      }
      const v = validateConfig(current.value);
      const pretty = sub === 'get' ? prettyJson(current.value) : '';
      return shown(v, { source: 'etcd', raw: current.value }, pretty + summary(ctx.style, v));
    }
    const v = validateConfig(given!);
    if (!v.valid || !v.config)
      return shown(v, { written: false }, summary(ctx.style, v) + 'nothing written\n');
    // Leases the new config would not accept: their hosts would have to move to a new subnet.
    const { records } = await listLeases(reg);
    const outside = records.filter((r) => {
      const pair = parseSubnetKey(r.key);
      return pair !== null && !isCompatible(v.config!, pair);
    });
    const text = JSON.stringify(JSON.parse(given!));
    if (!(await reg.putConfig(text, current.modRevision)))
      throw new WeftError(
        'E_LEASE_CONFLICT',
        'config set: the config changed in etcd meanwhile; run it again',
      );
    const warned = {
      ...v,
      warnings: v.warnings.concat(
        outside.map(
          (r) =>
            `lease ${r.key} does not fit the new config: its host gets a new subnet on restart`,
        ),
      ),
    };
    const written = `written to ${ctx.options.etcdPrefix}/config\n`;
    return shown(warned, { written: true }, summary(ctx.style, warned) + written);
  });
}

function validationJson(v: Validation): Record<string, unknown> {
  const c = v.config;
  return {
    valid: v.valid,
    error: v.error,
    warnings: v.warnings,
    config: c
      ? {
          network: c.network,
          subnetLen: c.subnetLen,
          subnetMin: c.subnetMin,
          subnetMax: c.subnetMax,
          ipv6Network: c.ipv6Network,
          ipv6SubnetLen: c.ipv6SubnetLen,
          backend: c.backend.type,
        }
      : null,
  };
}

function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2) + '\n';
  } catch {
    return text.split('\n').map(sanitize).join('\n') + '\n';
  }
}
