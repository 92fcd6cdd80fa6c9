/**
 * `weftctl ping --from-container=<path>` with a path that is no network namespace: nsenter cannot
 * enter it and exits 1, the code ping uses for "no reply". weftctl must report the failure (exit 5,
 * nsenter's words), not a 100 % packet loss that sends the user debugging the overlay. A real test
 * netns (pinging its own loopback) shows a good path still works; no packet leaves that netns.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { createNetns, deleteNetns, uniquePrefix } from '../helpers/netns.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('root', 'netns', 'ping');
useLeakCheck();

describe.skipIf(!runnable)('weftctl ping from a container path', () => {
  let tmp: string;
  let ns: string;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'weft-ping-'));
    ns = await createNetns(`${uniquePrefix()}p`);
  });
  afterAll(async () => {
    if (ns) await deleteNetns(ns);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const ping = (from: string) =>
    runCli(['ping', '127.0.0.1', '--count=1', '--json', `--from-container=${from}`], {
      env: {},
      stdoutIsTty: false,
      stderrIsTty: false,
      writeErr: () => {},
      readStdin: async () => '',
    });

  it('a path that is no network namespace is an error naming it (exit 5), not packet loss', async () => {
    const file = join(tmp, 'not-a-netns');
    writeFileSync(file, '');
    for (const from of [file, join(tmp, 'missing', 'ns')]) {
      const r = await ping(from);
      expect(r.exitCode, r.stdout).toBe(5);
      expect(JSON.parse(r.stdout)).toMatchObject({
        ok: false,
        error: { code: 'E_IO', message: expect.stringContaining(`from ${from} failed: nsenter`) },
      });
    }
  });

  it('a real network namespace path pings', async () => {
    const r = await ping(`/var/run/netns/${ns}`);
    expect(r.exitCode, r.stdout).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, transmitted: 1, received: 1 });
  });
});
