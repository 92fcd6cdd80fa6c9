/**
 * The node identity behind the VTEP MAC on a host without /etc/machine-id: persisted once in the state
 * dir (synced, renamed into place), the same on every later start, and when it cannot be written, ''
 * with a warning and no temp file left behind. A FIFO or a device planted at `node-id` (or at the
 * machine-id path) is not an id: both were read whole with readFile, so a FIFO hung weftd's start for
 * ever (and a link to /dev/zero would grow its memory until it died); now only a small regular file is
 * read, and node-id is written anew.
 */
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeIdentity } from '../../src/backend-vxlan/mac.js';
import { nullLogger, type Logger } from '../../src/log/logger.js';

describe('vxlan node identity without a machine id', () => {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'weft-node-id-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('is persisted once in the state dir and read back on the next start', async () => {
    const root = tempDir();
    const stateDir = join(root, 'state');
    const noMachineId = join(root, 'machine-id');
    const first = await nodeIdentity(stateDir, nullLogger, noMachineId);
    expect(first).toMatch(/^[0-9a-f]{32}$/);
    expect(readFileSync(join(stateDir, 'node-id'), 'utf8')).toBe(`${first}\n`);
    expect(readdirSync(stateDir)).toEqual(['node-id']);
    expect(await nodeIdentity(stateDir, nullLogger, noMachineId)).toBe(first);
    // a machine id wins over the stored node id
    writeFileSync(noMachineId, `${'ab'.repeat(16)}\n`);
    expect(await nodeIdentity(stateDir, nullLogger, noMachineId)).toBe('ab'.repeat(16));
  });

  it('falls back to the public IP alone, with a warning, when the node id cannot be written', async () => {
    const root = tempDir();
    const stateDir = join(root, 'state');
    writeFileSync(stateDir, 'a file where the state dir should be');
    const warnings: string[] = [];
    const log: Logger = { ...nullLogger, warn: (m) => void warnings.push(m), child: () => log };
    expect(await nodeIdentity(stateDir, log, join(root, 'machine-id'))).toBe('');
    expect(warnings).toEqual([expect.stringMatching(/cannot persist a node id/)]);
    expect(readdirSync(root)).toEqual(['state']);
  });

  it('skips a FIFO at node-id and writes a new node id', async () => {
    const root = tempDir();
    const stateDir = join(root, 'state');
    mkdirSync(stateDir);
    const fifo = join(stateDir, 'node-id');
    execFileSync('mkfifo', [fifo]);
    const id = nodeIdentity(stateDir, nullLogger, join(root, 'machine-id'));
    const timedOut = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 3000));
    const got = await Promise.race([id, timedOut]);
    // A reader stuck on the FIFO (the old code) is let go, so no thread stays blocked after the test.
    if (got === 'hung') closeSync(openSync(fifo, 'w'));
    expect(got).toMatch(/^[0-9a-f]{32}$/);
    expect(readFileSync(fifo, 'utf8')).toBe(`${got}\n`);
  });
});
