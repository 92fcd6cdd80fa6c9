// sd_notify over a real AF_UNIX datagram socket (native/src/sd_notify.c through the addon and
// src/daemon/sd-notify.ts): a path socket and an abstract one ('@'), the watchdog pings, and a missing
// socket reported without a throw. The receiver is python3 (Node cannot bind datagram unix sockets).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNative } from '../../src/native/binding.js';
import { createServiceNotifier } from '../../src/daemon/sd-notify.js';
import { nullLogger, type Logger } from '../../src/log/logger.js';
import { sleep } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { startNotifyReceiver } from '../helpers/notify-socket.js';

useLeakCheck();
const dir = mkdtempSync(join(tmpdir(), 'weft-notify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sd_notify on a real datagram socket', () => {
  it('delivers to a path socket', async () => {
    const r = await startNotifyReceiver(join(dir, 'notify.sock'));
    try {
      loadNative().sdNotify(r.address, 'READY=1\nSTATUS=hello');
      const m = await r.waitFor('READY=1', 5000);
      expect(m.msg).toBe('READY=1\nSTATUS=hello');
    } finally {
      await r.stop();
    }
  });

  it('delivers to an abstract socket written with a leading @', async () => {
    const r = await startNotifyReceiver(`@weft-test-notify-${process.pid}`);
    try {
      loadNative().sdNotify(r.address, 'STATUS=abstract');
      expect((await r.waitFor('STATUS=abstract', 5000)).msg).toBe('STATUS=abstract');
    } finally {
      await r.stop();
    }
  });

  it('throws an errno-shaped error for a missing socket or a relative path', () => {
    const addon = loadNative();
    expect(() => addon.sdNotify(join(dir, 'absent.sock'), 'READY=1')).toThrow(
      /No such file or directory/,
    );
    expect(() => addon.sdNotify('relative.sock', 'READY=1')).toThrow(/Invalid argument/);
  });

  it('pings WATCHDOG=1 at half of WATCHDOG_USEC and stops at STOPPING=1', async () => {
    const r = await startNotifyReceiver(join(dir, 'watchdog.sock'));
    try {
      const n = createServiceNotifier({
        env: {
          NOTIFY_SOCKET: r.address,
          WATCHDOG_USEC: '200000',
          WATCHDOG_PID: String(process.pid),
        },
        log: nullLogger,
      });
      n.ready('ready');
      await r.waitFor('WATCHDOG=1', 3000);
      await sleep(450);
      const pings = r.messages.filter((m) => m.msg === 'WATCHDOG=1').length;
      expect(pings).toBeGreaterThanOrEqual(3);
      n.stopping();
      await r.waitFor('STOPPING=1', 3000);
      const at = r.messages.length;
      await sleep(400);
      expect(r.messages.slice(at).filter((m) => m.msg === 'WATCHDOG=1')).toHaveLength(0);
    } finally {
      await r.stop();
    }
  });

  it('logs (does not throw) when the socket is gone', () => {
    const warned: string[] = [];
    const log: Logger = { ...nullLogger, warn: (msg: string) => void warned.push(msg) };
    const n = createServiceNotifier({ env: { NOTIFY_SOCKET: join(dir, 'gone.sock') }, log });
    expect(() => n.ready('ready')).not.toThrow();
    expect(warned).toEqual(['sd_notify failed']);
  });
});
