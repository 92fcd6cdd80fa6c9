/**
 * Running a delegate plugin (docs/cni-contract.md A2, A7): find its binary by `type` in CNI_PATH, exec it with
 * weft's own environment (which is the runtime's) plus CNI_* overrides, the config on stdin; on success
 * return stdout, on failure turn its error JSON into a CniError with the delegate's own code.
 */
import { lazySpawn } from './lazy.js';
import { accessSync, constants, statSync } from 'node:fs';
import * as path from 'node:path';
import { CniCode, CniError } from './errors.js';
import { isObject } from './netconf.js';

const TYPE_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
export const MAX_OUTPUT = 1 << 20;
export const DELEGATE_TIMEOUT_MS = 60_000;

export interface InvokeRequest {
  /** Absolute path of the plugin binary. */
  readonly plugin: string;
  readonly command: 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION';
  /** Values that replace weft's own CNI_* variables for this call. */
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: string;
  readonly timeoutMs?: number;
}

export type Invoker = (req: InvokeRequest) => Promise<string>;

/** Throws code 7 for a type that is not a plain file name, 101 when no CNI_PATH dir has it. */
export function findPlugin(type: string, dirs: readonly string[]): string {
  if (!TYPE_PATTERN.test(type) || type.length > 200) {
    throw new CniError(
      CniCode.InvalidNetworkConfig,
      `delegate type ${JSON.stringify(type)} is not a plugin name`,
    );
  }
  if (type === 'weft') {
    throw new CniError(CniCode.InvalidNetworkConfig, 'delegate type must not be "weft" itself');
  }
  for (const dir of dirs) {
    const p = path.join(dir, type);
    try {
      // No exception for the usual miss (an earlier CNI_PATH dir without it): Node builds a costly
      // Error with a stack for every ENOENT, measurable in weftd's per-call CPU.
      if (statSync(p, { throwIfNoEntry: false })?.isFile()) {
        accessSync(p, constants.X_OK);
        return p;
      }
    } catch {
      /* next dir */
    }
  }
  throw new CniError(
    CniCode.DelegateNotFound,
    `failed to find plugin "${type}" in path [${dirs.join(' ')}]`,
    'install the CNI reference plugins (Debian: containernetworking-plugins) into a CNI_PATH directory (absolute paths only: relative CNI_PATH entries are ignored)',
  );
}

/** The delegate's environment: the runtime's (`base`) with the request's CNI_* overrides. */
export function delegateEnv(
  base: Readonly<Record<string, string | undefined>>,
  req: InvokeRequest,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...base, ...req.env, CNI_COMMAND: req.command })) {
    if (v !== undefined) env[k] = v;
  }
  return env;
}

/**
 * How a finished delegate's run turns into its stdout or a CniError; shared by the standalone invoker
 * below and weftd's, whose delegates the CNI shim runs (src/daemon/cni-server.ts).
 */
export function delegateOutcome(
  req: InvokeRequest,
  stdout: Buffer,
  code: number | null,
  signal: NodeJS.Signals | null,
  overflow: boolean,
): string {
  const out = stdout.toString('utf8');
  const name = path.basename(req.plugin);
  if (overflow) {
    throw new CniError(
      CniCode.DelegateBadOutput,
      `${name} ${req.command} wrote more than ${MAX_OUTPUT} bytes`,
    );
  }
  if (code === 0) return out;
  throw delegateError(name, req.command, out, code, signal);
}

/** The standalone plugin's invoker: spawn, bounded output, timeout, stderr passed through to weft's. */
export const execInvoker: Invoker = (req) =>
  new Promise((resolve, reject) => {
    const child = lazySpawn()(req.plugin, [], {
      env: delegateEnv(process.env, req),
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const chunks: Buffer[] = [];
    let size = 0;
    let overflow = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, req.timeoutMs ?? DELEGATE_TIMEOUT_MS);
    child.stdout!.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_OUTPUT) overflow = true;
      else chunks.push(c);
    });
    child.stdin!.on('error', () => {
      /* plugin exited before reading stdin: its exit status tells */
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new CniError(CniCode.IoFailure, `cannot run ${req.plugin}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      try {
        resolve(delegateOutcome(req, Buffer.concat(chunks), code, signal, overflow));
      } catch (err) {
        reject(err);
      }
    });
    child.stdin!.end(req.stdin);
  });

function delegateError(
  name: string,
  command: string,
  stdout: string,
  code: number | null,
  signal: NodeJS.Signals | null,
): CniError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    parsed = undefined;
  }
  if (isObject(parsed) && typeof parsed['code'] === 'number' && typeof parsed['msg'] === 'string') {
    const details = typeof parsed['details'] === 'string' ? parsed['details'] : undefined;
    return new CniError(parsed['code'], `${name} ${command}: ${parsed['msg']}`, details);
  }
  const how = signal ? `killed by ${signal}` : `exit code ${code}`;
  const text = stdout.trim().slice(0, 500);
  return new CniError(
    CniCode.DelegateBadOutput,
    `${name} ${command} failed (${how})${text ? `: ${text}` : ''}`,
  );
}

/**
 * True when the delegate lists `version` in its VERSION answer. STATUS and GC (1.1.0) are forwarded only
 * then: older plugins do not fail them recognisably (Debian 12's bridge answers code 3 "missing
 * containerID" or 4 "unknown CNI_COMMAND").
 */
export async function delegateSupports(
  plugin: string,
  version: string,
  invoke: Invoker,
): Promise<boolean> {
  try {
    const out = await invoke({
      plugin,
      command: 'VERSION',
      env: { CNI_CONTAINERID: '', CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy' },
      stdin: JSON.stringify({ cniVersion: version }),
    });
    const v: unknown = JSON.parse(out);
    return (
      isObject(v) &&
      Array.isArray(v['supportedVersions']) &&
      v['supportedVersions'].includes(version)
    );
  } catch {
    return false;
  }
}
