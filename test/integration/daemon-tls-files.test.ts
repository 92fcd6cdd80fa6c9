/**
 * weftd given an odd file as an etcd TLS file (a FIFO, /dev/zero, a directory): exit 2 at once naming the
 * flag's file and why, never a hang. Before, the start read the file synchronously: a FIFO blocked it
 * for ever (and, with the JavaScript thread blocked, SIGTERM was never handled), /dev/zero filled the
 * memory (3.7 GB in 10 s). weftctl reads them the same way. Runs the built weftd and weftctl in a test
 * netns (they fail before touching anything).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, spawnTracked, stopChild } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { createNetns, deleteNetns, uniquePrefix } from '../helpers/netns.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('root', 'netns', 'openssl');
useLeakCheck();
const WEFTD = resolve(import.meta.dirname, '../../bin/weftd.js');
const WEFTCTL = resolve(import.meta.dirname, '../../bin/weftctl.js');

describe.skipIf(!runnable)('weftd: odd etcd TLS files', () => {
  let tmp: string;
  let ns: string;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'weft-tlsfiles-'));
    await run('mkfifo', [join(tmp, 'ca.fifo')]);
    mkdirSync(join(tmp, 'ca.dir'));
    writeFileSync(join(tmp, 'junk.pem'), 'not a PEM file\n');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      join(tmp, 'client.key'),
      '-out',
      join(tmp, 'client.crt'),
      '-days',
      '1',
      '-subj',
      '/CN=weft-test',
    ]);
    ns = await createNetns(`${uniquePrefix()}t`);
  });
  afterAll(async () => {
    if (ns) await deleteNetns(ns);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  // A file that reads but is no PEM (junk.pem): before, a junk CA was taken as trusting nothing and a
  // junk certificate failed every connection with OpenSSL's nameless "no start line", and weftd waited
  // "for etcd" for ever; now it is refused at start like an unreadable file.
  it.each([
    ['--etcd-cafile', 'ca.fifo', ' cannot be read: not a regular file'],
    ['--etcd-cafile', '/dev/zero', ' cannot be read: not a regular file'],
    ['--etcd-cafile', 'ca.dir', ' cannot be read: not a regular file'],
    ['--etcd-certfile', 'ca.fifo', ' cannot be read: not a regular file'],
    ['--etcd-cafile', 'junk.pem', ': holds no PEM certificate'],
    ['--etcd-keyfile', 'junk.pem', ': not a PEM private key'],
  ])('%s %s exits 2 at once:%s', async (flag, file, why) => {
    const path = file.startsWith('/') ? file : join(tmp, file);
    const extra =
      flag === '--etcd-certfile'
        ? [`--etcd-keyfile=${join(tmp, 'ca.fifo')}`]
        : flag === '--etcd-keyfile'
          ? [`--etcd-certfile=${join(tmp, 'client.crt')}`]
          : [];
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
      expect(stderr).toContain(`${path}${why}`);
    } finally {
      child.kill('SIGKILL'); // a hung start ignores SIGTERM
      await stopChild(child);
    }
  });

  it('weftctl doctor with a FIFO as --etcd-cafile exits 4 at once naming it', async () => {
    const child = spawnTracked(
      process.execPath,
      [
        WEFTCTL,
        'doctor',
        '--etcd-endpoints=https://127.0.0.1:9',
        `--etcd-cafile=${join(tmp, 'ca.fifo')}`,
        `--subnet-file=${join(tmp, 'subnet.env')}`,
        '--healthz-port=0',
      ],
      { ns },
    );
    let out = '';
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    try {
      const code = await Promise.race([
        new Promise<number | null>((r) => child.once('exit', (c) => r(c))),
        new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000)),
      ]);
      expect(code, out.slice(-1500)).toBe(4);
      expect(out).toContain(`${join(tmp, 'ca.fifo')} cannot be read: not a regular file`);
    } finally {
      child.kill('SIGKILL');
      await stopChild(child);
    }
  });
});
