/**
 * The plugin as weftd runs it (src/cni/in-process.ts): the answer is the standalone plugin's, and the
 * state file with the ADD result is handed back as a `later` task that weftd runs once the answer is out
 * (CniDeps.afterAnswer); runLater runs such tasks in order and reports every failure, never throwing.
 * The delegate is a recording fake here; test/integration/cni/cni-shim.test.ts runs the real ones.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cniPluginDir, pluginDirConf } from './plugin-dir.js';
import { runInProcess, runLater, type LaterTask } from '../../../src/cni/in-process.js';
import type { InvokeRequest, Invoker } from '../../../src/cni/invoke.js';
import { RELEASE_LOCK, slotName } from '../../../src/cni/lock.js';

let dir: string;
let calls: InvokeRequest[];

const invoke: Invoker = async (req) => {
  calls.push(req);
  if (req.command !== 'ADD') return '';
  return JSON.stringify({
    cniVersion: '1.0.0',
    interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:03', sandbox: '/run/netns/c' }],
    ips: [{ interface: 0, address: '10.5.72.2/24', gateway: '10.5.72.1' }],
    routes: [{ dst: '10.5.0.0/16', gw: '10.5.72.1' }],
  });
};

const env = (command: string) => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: 'ctr1',
  CNI_NETNS: '/run/netns/c',
  CNI_IFNAME: 'eth0',
  CNI_PATH: join(dir, 'bin'),
});
const conf = () => pluginDirConf(dir);
const stateFile = () => join(dir, 'state', 'net1', 'ctr1@eth0');
const stored = () => JSON.parse(readFileSync(stateFile(), 'utf8')) as Record<string, unknown>;
/** The network's state files, without the lock's (src/cni/lock.ts). */
const stateFiles = () =>
  readdirSync(join(dir, 'state', 'net1')).filter((n) => !n.startsWith('.lock'));
/** Whether another process could take `file`'s flock now (util-linux flock, non-blocking). */
const lockFree = (name: string, exclusive = true) =>
  spawnSync('flock', ['-n', exclusive ? '-x' : '-s', join(dir, 'state', 'net1', name), 'true'])
    .status === 0;

beforeEach(() => {
  dir = cniPluginDir('weft-cni-inproc-');
  calls = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('runInProcess', () => {
  it('ADD answers at once and leaves storing its result for after the answer', async () => {
    const r = await runInProcess(env('ADD'), conf(), invoke);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      cniVersion: '1.0.0',
      ips: [{ address: '10.5.72.2/24' }],
    });
    expect(r.later.map((t) => t.what)).toEqual(['storing the ADD result', RELEASE_LOCK]);
    // The delegate config was stored before the delegate ran; the result not yet.
    expect(stored()['delegate']).toMatchObject({ type: 'bridge' });
    expect(stored()['result']).toBeUndefined();
    // The state lock is held until the later tasks ran: another process can neither GC (exclusive
    // on .lock) nor touch this attachment (its slot) in between.
    expect([
      lockFree('.lock'),
      lockFree('.lock', false),
      lockFree(slotName('ctr1', 'eth0')),
    ]).toEqual([false, true, false]);
    const errors: string[] = [];
    runLater(r.later, (what) => errors.push(what));
    expect(errors).toEqual([]);
    expect([lockFree('.lock'), lockFree(slotName('ctr1', 'eth0'))]).toEqual([true, true]);
    expect(stored()['result']).toMatchObject({ ips: [{ address: '10.5.72.2/24' }] });
    // DEL finds the complete state, runs the delegate's DEL with prevResult and removes the file's name
    // before answering; only the file's last close (where ext4 frees it) is left for later.
    const d = await runInProcess(env('DEL'), conf(), invoke);
    expect(d.exitCode).toBe(0);
    expect(JSON.parse(calls.at(-1)!.stdin)['prevResult']).toMatchObject({ cniVersion: '1.0.0' });
    expect(stateFiles()).toEqual([]);
    expect(d.later.map((t) => t.what)).toEqual(['freeing the removed state file', RELEASE_LOCK]);
    runLater(d.later, (what) => errors.push(what));
    expect(errors).toEqual([]);
    // DEL again: nothing stored, nothing left for later.
    const again = await runInProcess(env('DEL'), conf(), invoke);
    expect([again.exitCode, again.later]).toEqual([0, []]);
  });

  it('a failed ADD leaves nothing for later (the undo already removed the state)', async () => {
    const failing: Invoker = async (req) => {
      calls.push(req);
      if (req.command === 'ADD') return 'not json';
      return '';
    };
    const r = await runInProcess(env('ADD'), conf(), failing);
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)['code']).toBe(104); // DelegateBadOutput
    expect(r.later).toEqual([]);
    expect(calls.map((c) => c.command)).toEqual(['ADD', 'DEL']);
    expect(stateFiles()).toEqual([]);
  });
});

describe('runLater', () => {
  it('runs every task in order and reports sync and async failures without throwing', async () => {
    const order: string[] = [];
    const failed: [string, string][] = [];
    const tasks: LaterTask[] = [
      { what: 'a', run: () => void order.push('a') },
      {
        what: 'b',
        run: () => {
          order.push('b');
          throw new Error('sync boom');
        },
      },
      {
        what: 'c',
        run: async () => {
          order.push('c');
          throw new Error('async boom');
        },
      },
      { what: 'd', run: () => void order.push('d') },
    ];
    expect(() =>
      runLater(tasks, (what, err) => failed.push([what, (err as Error).message])),
    ).not.toThrow();
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    await new Promise((r) => setImmediate(r));
    expect(failed).toEqual([
      ['b', 'sync boom'],
      ['c', 'async boom'],
    ]);
  });
});
