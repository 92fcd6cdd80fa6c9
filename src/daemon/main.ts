// weftd entrypoint (docs/design.md C12): options → deps → runDaemon → exit code. The only place that exits.
import { describeError } from '../errors.js';
import { packageVersion as version } from '../files/package-version.js';
import { createJsonLogger } from '../log/logger.js';
import { createDefaultDeps } from './deps.js';
import { acceptFlannelFlags } from './flannel-flags.js';
import { parseOptions, renderHelp, type DaemonOptions } from './options.js';
import { EXIT, runDaemon } from './run.js';

let options: DaemonOptions;
let legacyWarnings: readonly string[] = [];
try {
  const flannel = acceptFlannelFlags(process.argv.slice(2), process.env);
  legacyWarnings = flannel.warnings;
  options = parseOptions(flannel.argv, process.env);
} catch (err) {
  process.stderr.write(`weftd: ${describeError(err)}\n`);
  process.exit(EXIT.usage);
}
if (options.help) {
  process.stdout.write(renderHelp());
  process.exit(EXIT.ok);
}
if (options.version) {
  process.stdout.write(`weftd ${version()}\n`);
  process.exit(EXIT.ok);
}

// A log reader that went away (a pipe into a logger that died, a closed terminal) makes writes to stderr
// fail with EPIPE (Node ignores SIGPIPE); unhandled, that 'error' event ended weftd with exit 1 at its
// next log line. weftd keeps running (nothing it programs depends on who reads its log) and drops lines.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
const log = createJsonLogger({
  level: options.logLevel,
  bindings: { name: 'weftd' },
  write: (line) => {
    if (!process.stderr.destroyed) process.stderr.write(line);
  },
});
for (const w of legacyWarnings) log.warn(w);
const controller = new AbortController();
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (controller.signal.aborted) process.exit(EXIT.fatal); // second signal: give up waiting
    log.info('signal received: shutting down', { signal: sig });
    controller.abort();
  });
}
// A hang-up (closed terminal, a reload habit) must not take the daemon down: weft has nothing to reload.
process.on('SIGHUP', () =>
  log.warn('SIGHUP ignored: weftd has no reloadable state; restart it to change flags'),
);
// `kill -USR1`/`-USR2` are common "reopen your logs" habits. Node's own SIGUSR1 action starts the
// inspector on 127.0.0.1:9229, through which any local user could run code in weftd (root); its SIGUSR2
// action ends the process. A listener replaces both.
for (const sig of ['SIGUSR1', 'SIGUSR2'] as const)
  process.on(sig, () =>
    log.warn(`${sig} ignored: weftd logs to stderr and has no log file to reopen`),
  );
log.info('weftd starting', {
  version: version(),
  options: { ...options, etcdPassword: options.etcdPassword ? '***' : null },
});
// No top-level await: the packaged single executable runs this module as CommonJS (docs/design.md C18).
void runDaemon(options, createDefaultDeps(options, controller.signal, log)).then((result) => {
  if (result.exitCode === EXIT.ok) log.info(result.message);
  else log.error(result.message, { exitCode: result.exitCode });
  process.exit(result.exitCode);
});
