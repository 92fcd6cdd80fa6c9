/**
 * The plugin's logger: one line per message on stderr, never stdout (stdout carries only the result or
 * the error JSON). Debug lines only with WEFT_CNI_DEBUG=1. Deliberately not src/log (which cni/ may not
 * import, eslint.config.js): the plugin runs once per container and must start fast.
 */
export interface CniLog {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export function stderrLog(
  debug: boolean,
  write: (s: string) => void = (s) => process.stderr.write(s),
): CniLog {
  const emit = (level: string, msg: string, fields?: Record<string, unknown>): void => {
    const extra = fields ? ' ' + JSON.stringify(fields) : '';
    write(`weft ${level}: ${msg}${extra}\n`);
  };
  return {
    debug: (m, f) => {
      if (debug) emit('debug', m, f);
    },
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
  };
}

export const silentLog: CniLog = { debug: () => {}, info: () => {}, warn: () => {} };
