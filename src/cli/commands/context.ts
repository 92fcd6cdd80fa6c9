/**
 * What every weftctl command receives and returns. A command never prints or exits: it returns the
 * JSON document, the human text and the exit code; src/cli/main.ts prints one of them and exits.
 */
import type { ExitCode } from '../exit-codes.js';
import type { CliOptions } from '../options.js';
import type { Style } from '../render.js';

export interface CommandContext {
  readonly options: CliOptions;
  readonly style: Style;
  /** One progress line on stderr (long work only); a no-op under --json when stderr is not a TTY. */
  readonly progress: (message: string) => void;
  /** Reads all of stdin (`config set -`). */
  readonly readStdin: () => Promise<string>;
}

export interface CommandOutput {
  readonly exitCode: ExitCode;
  /** The `--json` document (an object with at least `ok`). */
  readonly json: Readonly<Record<string, unknown>> & { readonly ok: boolean };
  readonly human: string;
}

export type Command = (ctx: CommandContext) => Promise<CommandOutput>;
