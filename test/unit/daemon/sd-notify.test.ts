// weftd's systemd notifier (src/daemon/sd-notify.ts) with a recording send: the messages, their order
// and the once-only rules. The real datagram path is test/integration/sd-notify.test.ts.
import { describe, expect, it } from 'vitest';
import { nullLogger } from '../../../src/log/logger.js';
import { NO_NOTIFIER, createServiceNotifier, watchdogMs } from '../../../src/daemon/sd-notify.js';

function recorder(env: Record<string, string>) {
  const sent: { path: string; msg: string }[] = [];
  const n = createServiceNotifier({
    env,
    log: nullLogger,
    pid: 42,
    send: (path, msg) => void sent.push({ path, msg }),
  });
  return { n, sent };
}

describe('sd_notify messages', () => {
  it('is a no-op without NOTIFY_SOCKET', () => {
    expect(createServiceNotifier({ env: {}, log: nullLogger })).toBe(NO_NOTIFIER);
  });

  it('sends STATUS, READY=1 once, then STOPPING=1 once, to NOTIFY_SOCKET', () => {
    const { n, sent } = recorder({ NOTIFY_SOCKET: '@weft/notify' });
    n.status('waiting for etcd');
    n.ready('ready: 10.5.1.0/24 via eth0, vxlan');
    n.ready('again');
    n.stopping();
    n.stopping();
    n.status('after stopping');
    expect(sent.map((s) => s.path)).toEqual(['@weft/notify', '@weft/notify', '@weft/notify']);
    expect(sent.map((s) => s.msg)).toEqual([
      'STATUS=waiting for etcd',
      'READY=1\nSTATUS=ready: 10.5.1.0/24 via eth0, vxlan',
      'STOPPING=1\nSTATUS=stopping: the lease, device, routes and rules stay in place',
    ]);
  });

  it('keeps a status to one line (a hostile error text cannot inject READY=1)', () => {
    const { n, sent } = recorder({ NOTIFY_SOCKET: '/run/systemd/notify' });
    n.status('etcd said:\nREADY=1\r\n\u0000x');
    expect(sent[0]!.msg).toBe('STATUS=etcd said: READY=1 x');
    expect(sent[0]!.msg.split('\n')).toHaveLength(1);
  });

  it('does not send READY=1 once stopping began', () => {
    const { n, sent } = recorder({ NOTIFY_SOCKET: '/run/systemd/notify' });
    n.stopping('stopped before becoming ready');
    n.ready('late');
    expect(sent.map((s) => s.msg)).toEqual(['STOPPING=1\nSTATUS=stopped before becoming ready']);
  });

  it('never throws when the send fails', () => {
    const n = createServiceNotifier({
      env: { NOTIFY_SOCKET: '/nonexistent/notify' },
      log: nullLogger,
      send: () => {
        throw new Error('ENOENT');
      },
    });
    expect(() => {
      n.status('x');
      n.ready('y');
      n.stopping();
    }).not.toThrow();
  });
});

describe('watchdogMs', () => {
  it('reads WATCHDOG_USEC for this pid only', () => {
    expect(watchdogMs({ WATCHDOG_USEC: '30000000' }, 7)).toBe(30_000);
    expect(watchdogMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, 7)).toBe(30_000);
    expect(watchdogMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '8' }, 7)).toBeNull();
    expect(watchdogMs({}, 7)).toBeNull();
    expect(watchdogMs({ WATCHDOG_USEC: '0' }, 7)).toBeNull();
    expect(watchdogMs({ WATCHDOG_USEC: '-5' }, 7)).toBeNull();
    expect(watchdogMs({ WATCHDOG_USEC: '1e9' }, 7)).toBeNull();
  });
});
