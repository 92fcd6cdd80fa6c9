/**
 * weftd given an odd file as an etcd TLS file (a FIFO, /dev/zero, a directory): exit 2 at once naming the
 * flag's file and why, never a hang. Before, the start read the file synchronously: a FIFO blocked it
 * for ever (and, with the JavaScript thread blocked, SIGTERM was never handled), /dev/zero filled the
 * memory (3.7 GB in 10 s). Runs the built weftd in a test netns (it fails before touching anything).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, spawnTracked, stopChild } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { createNetns, deleteNetns, uniquePrefix } from '../helpers/netns.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('root', 'netns');
useLeakCheck();
const WEFTD = resolve(import.meta.dirname, '../../bin/weftd.js');

describe.skipIf(!runnable)('weftd: odd etcd TLS files', () => {
  let tmp: string;
  let ns: string;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'weft-tlsfiles-'));
    await run('mkfifo', [join(tmp, 'ca.fifo')]);
    mkdirSync(join(tmp, 'ca.dir'));
    ns = await createNetns(`${uniquePrefix()}t`);
  });
  afterAll(async () => {
    if (ns) await deleteNetns(ns);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it.each([
    ['--etcd-cafile', 'ca.fifo', 'not a regular file'],
    ['--etcd-cafile', '/dev/zero', 'not a regular file'],
    ['--etcd-cafile', 'ca.dir', 'not a regular file'],
    ['--etcd-certfile', 'ca.fifo', 'not a regular file'],
  ])('%s %s exits 2 at once: %s', async (flag, file, why) => {
    const path = file.startsWith('/') ? file : join(tmp, file);
    const extra = flag === '--etcd-certfile' ? [`--etcd-keyfile=${join(tmp, 'ca.fifo')}`] : [];
    const child = spawnTracked(
      process.execPath,
      [
        WEFTD,
        '--etcd-endpoints=https://127.0.0.1:9',
        `${flag}=${path}`,
        ...extra,
        `--subnet-file=${join(tmp, 'subnet.env')}`,
        `--state-dir=${join(tmp, 'state')}`,
        '--cni-socket=',
      ],
      { ns },
    );
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => {
      if (stderr.length < 1 << 16) stderr += b.toString();
    });
    child.stdout?.resume();
    try {
      const code = await Promise.race([
        new Promise<number | null>((r) => child.once('exit', (c) => r(c))),
        new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000)),
      ]);
      expect(code, stderr.slice(-1500)).toBe(2);
      expect(stderr).toContain(`${path} cannot be read: ${why}`);
    } finally {
      child.kill('SIGKILL'); // a hung start ignores SIGTERM
      await stopChild(child);
    }
  });
});
