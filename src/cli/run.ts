/**
 * weftctl's dispatcher: options → command → { exit code, JSON or human text }. No printing and no
 * exiting here (main.ts does both), so the whole CLI is testable in-process.
 */
import { describeError } from '../errors.js';
import { packageVersion as version } from '../files/package-version.js';
import type { Command, CommandContext, CommandOutput } from './commands/context.js';
import { cleanupCommand } from './commands/cleanup.js';
import { configCommand } from './commands/config.js';
import { dockerOptsCommand } from './commands/docker-opts.js';
import { doctorCommand } from './commands/doctor.js';
import { leaseCommand, leasesCommand } from './commands/leases.js';
import { peersCommand } from './commands/peers.js';
import { pingCommand } from './commands/ping.js';
import { statusCommand } from './commands/status.js';
import { traceCommand } from './commands/trace.js';
import { EXIT, exitForError, type ExitCode } from './exit-codes.js';
import { parseCliOptions, renderCliHelp, type CliOptions, type CommandName } from './options.js';
import { sanitize, toJson, wantColor } from './render.js';

const COMMAND_FUNCS: Partial<Record<CommandName, Command>> = {
  status: statusCommand,
  leases: leasesCommand,
  lease: leaseCommand,
  config: configCommand,
  peers: peersCommand,
  doctor: doctorCommand,
  trace: traceCommand,
  ping: pingCommand,
  cleanup: cleanupCommand,
  'docker-opts': dockerOptsCommand,
};

export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdoutIsTty: boolean;
  readonly stderrIsTty: boolean;
  readonly writeErr: (text: string) => void;
  readonly readStdin: () => Promise<string>;
}

interface CliResult {
  readonly exitCode: ExitCode;
  readonly stdout: string;
}

/**
 * Progress on stderr: on a TTY one line rewritten in place; otherwise (logs, pipes) a line per phase and
 * at most one per second within a phase, and nothing under --json.
 */
function progressWriter(io: CliIo, json: boolean): (msg: string) => void {
  let last = 0;
  let phase = '';
  return (msg) => {
    if (io.stderrIsTty) return io.writeErr(`\r\x1b[K${msg}`);
    if (json) return;
    const p = msg.replace(/\d+/g, '#');
    const now = Date.now();
    if (p === phase && now - last < 1000) return;
    phase = p;
    last = now;
    io.writeErr(`${msg}\n`);
  };
}

/** --json (-j, --json=true, WEFTCTL_JSON) read on its own, for when the other flags did not parse. */
function jsonAsked(argv: readonly string[], env: CliIo['env']): boolean {
  const yes = (v: string): boolean => /^(1|t|T|true|TRUE|True)$/.test(v);
  let json = yes(env['WEFTCTL_JSON'] ?? '');
  for (const a of argv) {
    if (a === '--') break;
    const m = /^--?(?:json|j)(?:=(.*))?$/.exec(a);
    if (m) json = m[1] === undefined || yes(m[1]);
  }
  return json;
}

/** A command that stopped on an error: `{ ok: false, error }` under --json, else nothing on stdout. */
const failed = (exitCode: ExitCode, json: boolean, code: string, message: string): CliResult => ({
  exitCode,
  stdout: json ? toJson({ ok: false, error: { code, message } }) : '',
});

export async function runCli(argv: readonly string[], io: CliIo): Promise<CliResult> {
  let options: CliOptions;
  try {
    options = parseCliOptions(argv, io.env);
  } catch (err) {
    const message = describeError(err);
    io.writeErr(`weftctl: ${message}\n`);
    return failed(EXIT.usage, jsonAsked(argv, io.env), 'E_OPTION_INVALID', message);
  }
  if (options.help || options.command === 'help')
    return { exitCode: EXIT.ok, stdout: renderCliHelp() };
  if (options.command === 'version')
    return {
      exitCode: EXIT.ok,
      stdout: options.json ? toJson({ ok: true, version: version() }) : `weftctl ${version()}\n`,
    };
  const ctx: CommandContext = {
    options,
    style: { color: !options.json && wantColor(options.color, io.stdoutIsTty, io.env) },
    progress: progressWriter(io, options.json),
    readStdin: io.readStdin,
  };
  let out: CommandOutput;
  try {
    out = await COMMAND_FUNCS[options.command]!(ctx);
  } catch (err) {
    if (io.stderrIsTty) io.writeErr('\r\x1b[K');
    const message = describeError(err);
    // the message may quote what an etcd endpoint or a lease sent: no control sequence reaches stderr
    io.writeErr(`weftctl ${options.command}: ${message.split('\n').map(sanitize).join('\n')}\n`);
    const code = (err as { code?: unknown }).code;
    const errCode = typeof code === 'string' ? code : 'E_INTERNAL';
    return failed(exitForError(err), options.json, errCode, message);
  }
  if (io.stderrIsTty) io.writeErr('\r\x1b[K');
  return { exitCode: out.exitCode, stdout: options.json ? toJson(out.json) : out.human };
}
