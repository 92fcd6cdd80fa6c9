/**
 * TunKeeper (src/backend/lifecycle.ts), which keeps the udp and wireguard backends' native engines: a
 * fatal engine error ends `run` with that error, a TUN deleted under its engine (EBADFD on read) is
 * recreated in place, an error of an engine already replaced or released is ignored, and a restart
 * that fails ends `run` with an error naming the backend and the device.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { TunKeeper, type TunSlot } from '../../src/backend/lifecycle.js';
import { WeftError } from '../../src/errors.js';
import { nullLogger, type LogFields, type Logger } from '../../src/log/logger.js';

class Engine extends EventEmitter {
  closed = false;
  constructor(readonly localPort: number) {
    super();
  }
  close(): void {
    this.closed = true;
  }
  fail(code: string, syscall: string): void {
    this.emit(
      'error',
      new WeftError('E_NATIVE', `stopped: ${syscall} ${code}`, { details: { code, syscall } }),
    );
  }
}

const tick = (ms = 10): Promise<void> => new Promise((r) => setTimeout(r, ms));

function setup(restart: () => Engine = () => new Engine(2), armed = true) {
  const lines: string[] = [];
  const line = (level: string) => (msg: string, f?: LogFields) =>
    void lines.push(`${level} ${msg} ${JSON.stringify(f)}`);
  const log: Logger = { ...nullLogger, warn: line('warn'), info: line('info') };
  const steps: string[] = [];
  const tun = new TunKeeper<Engine, TunSlot<Engine>>('udp', log);
  const slot = tun.watch({ name: 'weft0', engine: new Engine(1) });
  const arm = (): void =>
    tun.repairWith({
      deleted: 'udp device weft0 was deleted (ip link del?): recreating it',
      restart: () => {
        steps.push('restart');
        return restart();
      },
      replaced: (s) => void steps.push(`replaced ${s.engine.localPort}`),
      configure: async () => void steps.push('configure'),
      reconcileNow: async () => void steps.push('reconcile'),
    });
  if (armed) arm();
  const ac = new AbortController();
  const loop = (signal: AbortSignal): Promise<void> =>
    new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  const done = tun.run(loop, ac.signal);
  return { tun, slot, ac, done, lines, steps };
}

describe('TunKeeper', () => {
  it('recreates a deleted TUN in place: restart, sink, address/route, reconcile; run goes on', async () => {
    const { slot, ac, done, lines, steps } = setup();
    const first = slot.engine;
    first.fail('EBADFD', 'read');
    await tick();
    expect(first.closed).toBe(true);
    expect(slot.engine.localPort).toBe(2);
    expect(steps).toEqual(['restart', 'replaced 2', 'configure', 'reconcile']);
    expect(lines).toEqual([
      'warn udp device weft0 was deleted (ip link del?): recreating it {"device":"weft0","err":"stopped: read EBADFD"}',
      'info udp device recreated {"device":"weft0","port":2}',
    ]);
    first.fail('EIO', 'read'); // the replaced engine is no longer heard
    await tick();
    ac.abort();
    await done;
  });

  it('ends run with any other engine error, and repairs nothing after it', async () => {
    const { slot, done, steps } = setup();
    slot.engine.fail('EIO', 'read');
    await expect(done).rejects.toMatchObject({ code: 'E_NATIVE', details: { code: 'EIO' } });
    slot.engine.fail('EBADFD', 'read');
    await tick();
    expect(steps).toEqual([]);
  });

  it('a restart that fails ends run with an error naming the backend and the device', async () => {
    const { slot, done } = setup(() => {
      throw new Error('no TUN');
    });
    slot.engine.fail('EBADFD', 'read');
    await expect(done).rejects.toThrow(
      'udp: the TUN weft0 was deleted (ip link del) and cannot be recreated (weftd exits; its ' +
        'restart sets the device up again): no TUN',
    );
  });

  it('a TUN deleted while the network is set up (before repairWith) is fatal: nothing restarted', async () => {
    const { slot, done, steps } = setup(undefined, false);
    slot.engine.fail('EBADFD', 'read');
    await expect(done).rejects.toMatchObject({ details: { code: 'EBADFD' } });
    expect(steps).toEqual([]);
  });

  it('release closes the engine and ignores its errors from then on', async () => {
    const { tun, slot, ac, done, steps } = setup();
    tun.release();
    expect(slot.engine.closed).toBe(true);
    slot.engine.fail('EBADFD', 'read');
    slot.engine.fail('EIO', 'read');
    await tick();
    expect(steps).toEqual([]);
    ac.abort();
    await done;
  });
});
