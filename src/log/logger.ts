/**
 * One structured, levelled logger for all of weft (docs/design.md C11). Implementations: `createJsonLogger`
 * (newline-delimited JSON on a stream, used by weftd through pino-compatible fields), `nullLogger` for
 * tests. Everything that logs receives a Logger through its deps; nothing imports a global one.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `bindings` to every line. */
  child(bindings: LogFields): Logger;
}

const order: Record<LogLevel, number> = { debug: 20, info: 30, warn: 40, error: 50 };

export interface JsonLoggerOptions {
  level?: LogLevel;
  /** Where lines go; default process.stderr. */
  write?: (line: string) => void;
  bindings?: LogFields;
}

function serialise(value: unknown, depth = 0): unknown {
  if (value instanceof Error) {
    if (depth > 8) return { message: value.message, name: value.name };
    const out: Record<string, unknown> = { message: value.message, name: value.name };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out['code'] = code;
    if (value.cause !== undefined) out['cause'] = serialise(value.cause, depth + 1);
    return out;
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/**
 * One JSON line. Logging never throws: fields that cannot be serialised (values from etcd or stdin nested
 * deep enough to overflow JSON.stringify's recursion, cycles) are replaced by a note naming the problem.
 */
function toLine(rec: Record<string, unknown>, level: LogLevel, msg: string): string {
  try {
    return JSON.stringify(rec) + '\n';
  } catch (err) {
    return (
      JSON.stringify({
        level: order[level],
        time: rec['time'],
        msg,
        logFieldsDropped: `fields not serialisable: ${err instanceof Error ? err.message : String(err)}`,
      }) + '\n'
    );
  }
}

/** Newline-delimited JSON with pino's field names (`level` numeric, `time`, `msg`). */
export function createJsonLogger(options: JsonLoggerOptions = {}): Logger {
  const min = order[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const make = (bindings: LogFields): Logger => {
    const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
      if (order[level] < min) return;
      const rec: Record<string, unknown> = { level: order[level], time: Date.now(), ...bindings };
      if (fields) for (const [k, v] of Object.entries(fields)) rec[k] = serialise(v);
      rec['msg'] = msg;
      write(toLine(rec, level, msg));
    };
    return {
      debug: (m, f) => emit('debug', m, f),
      info: (m, f) => emit('info', m, f),
      warn: (m, f) => emit('warn', m, f),
      error: (m, f) => emit('error', m, f),
      child: (b) => make({ ...bindings, ...b }),
    };
  };
  return make(options.bindings ?? {});
}

export const nullLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => nullLogger,
};

/**
 * A logger that lets through at most `burst` lines per `intervalMs` for each message text, then one
 * "suppressed N" summary: for paths that can fire per event or per packet.
 */
export function rateLimited(log: Logger, intervalMs = 10_000, burst = 5): Logger {
  const seen = new Map<string, { start: number; count: number }>();
  const gate = (level: LogLevel, msg: string, fields?: LogFields): void => {
    // Monotonic: after the wall clock is stepped back (NTP, an operator), Date.now() would keep every
    // repeated message silent for as long as the step.
    const now = performance.now();
    const s = seen.get(msg);
    if (!s || now - s.start >= intervalMs) {
      if (s && s.count > burst)
        log.warn('log lines suppressed', { msg, suppressed: s.count - burst });
      seen.set(msg, { start: now, count: 1 });
      log[level](msg, fields);
      return;
    }
    s.count++;
    if (s.count <= burst) log[level](msg, fields);
  };
  return {
    debug: (m, f) => gate('debug', m, f),
    info: (m, f) => gate('info', m, f),
    warn: (m, f) => gate('warn', m, f),
    error: (m, f) => gate('error', m, f),
    child: (b) => rateLimited(log.child(b), intervalMs, burst),
  };
}
