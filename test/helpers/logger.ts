import { nullLogger, type Logger, type LogFields } from '../../src/log/logger.js';

/** A silent logger that keeps its warnings (message and fields) for the test to inspect. */
export function warnRecorder(): Logger & { warnings: Array<[string, LogFields | undefined]> } {
  const warnings: Array<[string, LogFields | undefined]> = [];
  const log = {
    ...nullLogger,
    warnings,
    warn: (m: string, f?: LogFields) => void warnings.push([m, f]),
    child: () => log,
  };
  return log;
}
