/**
 * Human output of weftctl: aligned tables, key/value blocks, durations, and colours only when asked for
 * or when stdout is a TTY (and NO_COLOR is unset). Pure: every function returns a string.
 */

type Tone = 'ok' | 'warn' | 'bad' | 'dim' | 'plain';

export interface Style {
  readonly color: boolean;
}

const CODES: Record<Exclude<Tone, 'plain'>, [string, string]> = {
  ok: ['\x1b[32m', '\x1b[39m'],
  warn: ['\x1b[33m', '\x1b[39m'],
  bad: ['\x1b[31m', '\x1b[39m'],
  dim: ['\x1b[2m', '\x1b[22m'],
};

export function paint(style: Style, tone: Tone, text: string): string {
  if (!style.color || tone === 'plain') return text;
  const [on, off] = CODES[tone];
  return `${on}${text}${off}`;
}

/** Whether to colour: `always`/`never` win; `auto` = a TTY and no NO_COLOR (https://no-color.org). */
export function wantColor(
  mode: 'auto' | 'always' | 'never',
  isTty: boolean,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  if (mode === 'always') return true;
  if (mode === 'never') return false;
  return isTty && !env['NO_COLOR'] && env['TERM'] !== 'dumb';
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
const visible = (s: string): number => s.replace(ANSI, '').length;

/** A cell: plain text, or text with a tone. */
export type Cell = string | { readonly text: string; readonly tone: Tone };

/** A cell's text, sanitized and painted. */
const cellText = (style: Style, c: Cell): string =>
  typeof c === 'string' ? sanitize(c) : paint(style, c.tone, sanitize(c.text));

/** Control characters from hostile input (etcd values) must not reach the terminal; nor bidi
 *  overrides and isolates, which reorder the rest of the line (a key can then read as another). */
export function sanitize(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '?');
}

/** An aligned table with a header row; empty `rows` prints the header and `(none)`. */
export function table(
  style: Style,
  headers: readonly string[],
  rows: readonly (readonly Cell[])[],
): string {
  const texts = rows.map((r) => headers.map((_, i) => cellText(style, r[i] ?? '')));
  const widths = headers.map((h, i) =>
    Math.max(h.length, ...texts.map((r) => visible(r[i] ?? ''))),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - visible(c))))
      .join('  ')
      .trimEnd();
  const out = [line(headers.map((h) => paint(style, 'dim', h.toUpperCase())))];
  for (const r of texts) out.push(line(r));
  if (rows.length === 0) out.push(paint(style, 'dim', '(none)'));
  return out.join('\n') + '\n';
}

/** `key: value` lines with the keys aligned. */
export function keyValues(style: Style, pairs: readonly (readonly [string, Cell])[]): string {
  const w = Math.max(0, ...pairs.map(([k]) => k.length));
  return (
    pairs
      .map(([k, v]) => `${paint(style, 'dim', (k + ':').padEnd(w + 1))} ${cellText(style, v)}`)
      .join('\n') + '\n'
  );
}

/** 0 → '0s', 59 → '59s', 3600 → '1h0m', 90061 → '1d1h1m'; negative → 'expired'; null (unknown) → '?'. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null) return '?';
  if (!Number.isFinite(seconds)) return '—';
  if (seconds < 0) return 'expired';
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d${h}h${m}m`;
  if (h > 0) return `${h}h${m}m`;
  if (m > 0) return `${m}m${s % 60}s`;
  return `${s}s`;
}

/** The tone of a verdict word. */
export function toneOf(verdict: string): Tone {
  if (verdict === 'ok' || verdict === 'pass') return 'ok';
  if (verdict === 'warn' || verdict === 'reserved' || verdict === 'info') return 'warn';
  return 'bad';
}

const MAX_JSON_DEPTH = 64;

/** A copy of `value` with anything nested deeper than `depth` levels replaced by a marker string. */
function clipDepth(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth <= 0) return '<nested too deep: cut by weftctl>';
  if (Array.isArray(value)) return value.map((v) => clipDepth(v, depth - 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = clipDepth(v, depth - 1);
  return out;
}

/**
 * Stable JSON for `--json`: two-space indent, one trailing newline. Values read from etcd are hostile:
 * one nested deeper than 64 levels (which would overflow JSON.stringify's stack) is cut with a marker
 * instead of failing the whole command.
 */
export function toJson(value: unknown): string {
  try {
    return JSON.stringify(value, null, 2) + '\n';
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    return JSON.stringify(clipDepth(value, MAX_JSON_DEPTH), null, 2) + '\n';
  }
}
