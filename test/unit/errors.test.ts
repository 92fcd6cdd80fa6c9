import { describe, expect, it, vi } from 'vitest';
import {
  AbortedError,
  ConfigError,
  WeftError,
  describeError,
  hasCode,
  isRetryable,
} from '../../src/errors.js';
import { createJsonLogger, rateLimited } from '../../src/log/logger.js';

describe('errors', () => {
  it('carry a stable code, a cause and a retryable brand', () => {
    const cause = new Error('EEXIST');
    const e = new WeftError('E_NETLINK', 'failed to add route 10.5.2.0/24: EEXIST', {
      cause,
      retryable: true,
    });
    expect(e).toBeInstanceOf(WeftError);
    expect(e.code).toBe('E_NETLINK');
    expect(e.cause).toBe(cause);
    expect(isRetryable(e)).toBe(true);
    expect(isRetryable(new ConfigError('bad'))).toBe(false);
    expect(hasCode(new ConfigError('bad'), 'E_CONFIG_INVALID')).toBe(true);
    expect(describeError(e)).toBe('failed to add route 10.5.2.0/24: EEXIST');
    // a cause its wrapper does not quote is still appended
    expect(describeError(new WeftError('E_NETLINK', 'add route', { cause }))).toBe(
      'add route: EEXIST',
    );
    expect(isRetryable(new Error('x'))).toBe(false);
    // subclasses keep the prototype check: a ConfigError is not an AbortedError
    expect(new ConfigError('bad') instanceof AbortedError).toBe(false);
    expect(new AbortedError() instanceof AbortedError).toBe(true);
    expect(new AbortedError() instanceof WeftError).toBe(true);
    // a branded error from another copy of the module still counts as a WeftError
    const foreign = Object.assign(new Error('x'), { [Symbol.for('weft.error')]: true });
    expect(foreign instanceof WeftError).toBe(true);
  });
});

describe('logger', () => {
  it('writes pino-shaped JSON lines with bindings and filters by level', () => {
    const lines: string[] = [];
    const log = createJsonLogger({ level: 'info', write: (l) => lines.push(l) }).child({
      component: 'test',
    });
    log.debug('hidden');
    log.info('lease acquired', { subnet: '10.5.1.0/24', err: new WeftError('E_IO', 'x') });
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0]!);
    expect(rec).toMatchObject({
      level: 30,
      component: 'test',
      msg: 'lease acquired',
      subnet: '10.5.1.0/24',
    });
    expect(rec.err).toMatchObject({ code: 'E_IO', message: 'x' });
  });

  it('rate-limits repeated messages', () => {
    const lines: string[] = [];
    const log = rateLimited(createJsonLogger({ write: (l) => lines.push(l) }), 60_000, 3);
    for (let i = 0; i < 10; i++) log.warn('etcd unavailable');
    log.warn('other');
    expect(lines.length).toBe(4);
  });

  it('rate-limits by elapsed time, not by the wall clock: a clock stepped back does not silence', async () => {
    const lines: string[] = [];
    const log = rateLimited(createJsonLogger({ write: (l) => lines.push(l) }), 50, 1);
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-06-01T12:00:00Z') });
    try {
      log.warn('renewal failed');
      vi.setSystemTime(new Date('2026-06-01T11:00:00Z')); // NTP steps the clock back an hour
      await new Promise((r) => setTimeout(r, 80)); // longer than the interval, really elapsed
      log.warn('renewal failed');
    } finally {
      vi.useRealTimers();
    }
    expect(lines.filter((l) => l.includes('renewal failed'))).toHaveLength(2);
  });
});
