/**
 * Running a program (nft, iptables, ip, ethtool) and collecting its output. Never rejects: a missing
 * program is exit code 127, any other failure without an exit code (timeout, signal) is 1, and
 * `message` says what went wrong (stderr, else the spawn error's text).
 */
import { execFile } from 'node:child_process';

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The program was not found (code 127). */
  readonly missing: boolean;
  /** stderr, or when the program gave no exit code (not found, timed out) the spawn error's text. */
  readonly message: string;
}

export function runCommand(
  argv: readonly string[],
  o: { input?: string | null; timeoutMs?: number; maxBuffer?: number } = {},
): Promise<CommandResult> {
  const [cmd = '', ...args] = argv;
  const opts = { timeout: o.timeoutMs ?? 10_000, maxBuffer: o.maxBuffer ?? 16 << 20 };
  return new Promise((resolve) => {
    const child = execFile(cmd, args, opts, (err, stdout, stderr) => {
      const exit = err?.code;
      const code = !err ? 0 : typeof exit === 'number' ? exit : exit === 'ENOENT' ? 127 : 1;
      const message = stderr || (err && typeof exit !== 'number' ? err.message : '');
      const missing = exit === 'ENOENT';
      resolve({ code, stdout: String(stdout), stderr: String(stderr), missing, message });
    });
    child.stdin?.on('error', () => undefined); // EPIPE when the program is missing or died
    if (o.input != null) child.stdin?.end(o.input);
  });
}
