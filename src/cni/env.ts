/**
 * The CNI_* environment (docs/cni-contract.md A3), validated before anything touches a path: the container id
 * and ifname become parts of a file name under dataDir, so they are checked against the spec's rules here.
 */
import { CniCode, CniError } from './errors.js';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type Command = (typeof COMMANDS)[number];

/** The spec's pattern for container ids and network names (cni pkg/utils). */
export const ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** Longer ids would not fit a file name (255 bytes) with the ifname and a temp suffix. */
export const MAX_ID_LENGTH = 200;

export interface CniEnv {
  readonly command: Command;
  readonly containerId: string;
  readonly netns: string;
  readonly ifname: string;
  readonly args: string;
  /** CNI_PATH split at `:`, empty and relative entries dropped. */
  readonly path: readonly string[];
}

const REQUIRED: Record<Command, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  GC: ['CNI_PATH'],
  STATUS: [],
  VERSION: [],
};

/** Code 4: the environment is invalid. */
const badEnv = (msg: string, details?: string): CniError =>
  new CniError(CniCode.InvalidEnv, msg, details);

/** Throws code 4 unless `id` is a valid container id. */
export function validateContainerId(id: string): void {
  if (id === '') throw badEnv('missing containerID');
  if (id.length > MAX_ID_LENGTH || !ID_PATTERN.test(id)) {
    throw badEnv(
      'invalid characters in containerID',
      `CNI_CONTAINERID must match ${ID_PATTERN.source} and be at most ${MAX_ID_LENGTH} characters`,
    );
  }
}

/** Throws code 4 unless `name` is a valid interface name (cni pkg/utils ValidateInterfaceName, and no "%"). */
export function validateIfname(name: string): void {
  let why: string | undefined;
  if (name === '') why = 'is empty';
  else if (Buffer.byteLength(name) > 15) why = 'is longer than 15 bytes';
  else if (name === '.' || name === '..') why = 'is "." or ".."';
  else if (/[/:\s]/.test(name)) why = 'contains "/", ":" or whitespace';
  // The kernel makes a name with "%" a template ("a%d" → "a0"): the delegate's veth would get another
  // name than the one it then looks up, fail, and leave both veth ends behind on every retry.
  else if (name.includes('%')) why = 'contains "%" (the kernel treats it as a name template)';
  if (why !== undefined) {
    throw new CniError(CniCode.InvalidEnv, `interface name ${JSON.stringify(name)} ${why}`);
  }
}

/**
 * Throws code 4 unless `args` is `K=V;K=V` as the Go CNI library parses it (cni pkg/types/args.go
 * LoadArgs: every `;`-separated pair has exactly one `=`). The reference delegates refuse anything else
 * on every command, ADD and DEL alike; caught here, ADD fails before anything is allocated or stored.
 * Unknown keys are the delegate's business (they pass with `IgnoreUnknown=1`).
 */
export function validateCniArgs(args: string): void {
  if (args === '') return;
  for (const pair of args.split(';')) {
    if (pair.split('=').length !== 2) {
      throw badEnv(
        `CNI_ARGS pair ${JSON.stringify(pair.length > 64 ? pair.slice(0, 64) + '…' : pair)} is not KEY=VALUE`,
        'CNI_ARGS must be KEY=VALUE pairs separated by ";", each with exactly one "=" and no empty pair',
      );
    }
  }
}

/** Parses and validates the environment for the command it names. */
export function parseEnv(env: Readonly<Record<string, string | undefined>>): CniEnv {
  const raw = env['CNI_COMMAND'] ?? '';
  if (raw === '') {
    throw badEnv('required env variables [CNI_COMMAND] missing');
  }
  if (!(COMMANDS as readonly string[]).includes(raw)) {
    throw badEnv(`unknown CNI_COMMAND ${JSON.stringify(raw)}`, `use one of ${COMMANDS.join(', ')}`);
  }
  const command = raw as Command;
  const missing = REQUIRED[command].filter((k) => (env[k] ?? '') === '');
  if (missing.length > 0) {
    throw badEnv(`required env variables [${missing.join(',')}] missing`);
  }
  const containerId = env['CNI_CONTAINERID'] ?? '';
  const ifname = env['CNI_IFNAME'] ?? '';
  if (command === 'ADD' || command === 'DEL' || command === 'CHECK') {
    validateContainerId(containerId);
    validateIfname(ifname);
  }
  // DEL is not refused: it must succeed (del.ts retries the delegate's DEL without CNI_ARGS).
  if (command === 'ADD' || command === 'CHECK') validateCniArgs(env['CNI_ARGS'] ?? '');
  const netns = env['CNI_NETNS'] ?? '';
  if ((command === 'ADD' || command === 'CHECK') && !netns.startsWith('/')) {
    throw badEnv(`CNI_NETNS ${JSON.stringify(netns)} is not an absolute path`);
  }
  // Relative entries are dropped: inside weftd they would resolve against weftd's working directory,
  // while the shim runs the delegate from the runtime's, so weftd could check one file and the shim
  // run another; a plugin never depends on its working directory.
  const path =
    command === 'VERSION'
      ? []
      : (env['CNI_PATH'] ?? '').split(':').filter((p) => p.startsWith('/'));
  return { command, containerId, netns, ifname, args: env['CNI_ARGS'] ?? '', path };
}
