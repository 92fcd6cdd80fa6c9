/**
 * Go `flag`-package command-line syntax, shared by weftd and weftctl: `-x`, `--x`, `--x=v`, `--x v`, and
 * a bool flag alone meaning true (`--x=false` to turn it off). Each program keeps its own flag table,
 * kinds and messages; this reads one flag occurrence, a Go bool, the first set environment variable,
 * and resolves a flag's value from them (`resolveFlag`).
 * Pure: no I/O. Errors are ConfigError E_OPTION_INVALID naming the flag or variable.
 */
import { ConfigError } from '../errors.js';

/** The part of a flag table entry this module needs (`check`: an error text, or undefined). */
export interface FlagName {
  readonly name: string;
  readonly kind: string;
  readonly def: unknown;
  readonly check?: (value: never) => string | undefined;
}

export interface FlagOccurrence<S extends FlagName> {
  readonly spec: S;
  /** `--<name>`, for messages. */
  readonly source: string;
  /** The value text ('true' for a bool flag given alone). */
  readonly raw: string;
  /** Index of the last argv word it used (the value's, for `--x v`). */
  readonly last: number;
}

export function optionError(message: string): ConfigError {
  return new ConfigError(message, { code: 'E_OPTION_INVALID' });
}

/**
 * Reads the flag at `argv[i]` (which starts with '-'); `aliases` maps short names to table names.
 * Throws `unknown(rawName)` when the name is not in `specs`.
 */
export function readGoFlag<S extends FlagName>(
  argv: readonly string[],
  i: number,
  specs: ReadonlyMap<string, S>,
  aliases: Readonly<Record<string, string>>,
  unknown: (rawName: string) => Error,
): FlagOccurrence<S> {
  const body = (argv[i] ?? '').replace(/^--?/, '');
  const eq = body.indexOf('=');
  const rawName = eq < 0 ? body : body.slice(0, eq);
  const spec = specs.get(aliases[rawName] ?? rawName);
  if (!spec) throw unknown(rawName);
  const source = `--${spec.name}`;
  if (eq >= 0) return { spec, source, raw: body.slice(eq + 1), last: i };
  if (spec.kind === 'bool') return { spec, source, raw: 'true', last: i };
  const next = argv[i + 1];
  if (next === undefined) throw optionError(`${source} needs a value: ${source}=<value>`);
  return { spec, source, raw: next, last: i + 1 };
}

/** Go's strconv.ParseBool subset flannel's flags accept: 1/t/true, 0/f/false (any case). */
export function parseGoBool(source: string, raw: string): boolean {
  const t = raw.toLowerCase();
  if (['1', 't', 'true'].includes(t)) return true;
  if (['0', 'f', 'false'].includes(t)) return false;
  throw optionError(`${source} must be true or false, got ${JSON.stringify(raw)}`);
}

/** The first of `names` set to a non-empty value in `env`, with its `environment variable X` source. */
export function firstEnvValue(
  env: Readonly<Record<string, string | undefined>>,
  names: readonly string[],
): { raw: string; source: string } | undefined {
  for (const name of names) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') return { raw, source: `environment variable ${name}` };
  }
  return undefined;
}

/**
 * One flag's value: as given on the command line, else from the first of `envNames` set, else the
 * default; then the row's check. Throws E_OPTION_INVALID naming where the value came from.
 */
export function resolveFlag<S extends FlagName, V>(
  spec: S,
  given: { value: V; source: string } | undefined,
  env: Readonly<Record<string, string | undefined>>,
  envNames: readonly string[],
  convert: (spec: S, source: string, raw: string) => V,
): { value: unknown; source: string | null } {
  let entry = given;
  if (!entry) {
    const e = firstEnvValue(env, envNames);
    if (e) entry = { value: convert(spec, e.source, e.raw), source: e.source };
  }
  const value = entry ? entry.value : spec.def;
  const problem = spec.check?.(value as never);
  if (problem !== undefined)
    throw optionError(
      `${entry?.source ?? `--${spec.name}`}=${String(value)} is invalid: ${problem}`,
    );
  return { value, source: entry?.source ?? null };
}
