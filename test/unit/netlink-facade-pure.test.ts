import { describe, expect, it } from 'vitest';
import {
  bytesToIp,
  macToBytes,
  ipToBytes,
  isAbsent,
  NetlinkError,
  toNetlinkError,
} from '../../src/netlink/index.js';
import { canonicalIp, cidrParts } from '../../src/netlink/addr.js';
import { isRetryable } from '../../src/errors.js';
import { InFlightLimiter } from '../../src/netlink/limiter.js';

describe('address helpers', () => {
  it.each([
    ['10.5.1.0', '0a050100'],
    ['::', '00000000000000000000000000000000'],
    ['fd05::1', 'fd050000000000000000000000000001'],
    ['fd05:0:0:2::', 'fd050000000000020000000000000000'],
    ['::ffff:198.18.0.1', '00000000000000000000ffffc6120001'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
  ])('%s ↔ bytes', (ip, hex) => {
    expect(ipToBytes(ip).toString('hex')).toBe(hex);
    expect(canonicalIp(bytesToIp(Buffer.from(hex, 'hex')))).toBe(canonicalIp(ip));
  });
  it('formats IPv6 canonically (RFC 5952)', () => {
    expect(canonicalIp('FD05:0000:0000:0002:0000:0000:0000:0000')).toBe('fd05:0:0:2::');
    expect(canonicalIp('1:0:0:2:0:0:0:3')).toBe('1:0:0:2::3');
    expect(canonicalIp('1:0:2:3:4:5:6:7')).toBe('1:0:2:3:4:5:6:7');
  });
  it('IPv4 at the edges', () => {
    expect(ipToBytes('255.0.10.1').toString('hex')).toBe('ff000a01');
    expect(bytesToIp(Buffer.from([0, 255, 7, 10]))).toBe('0.255.7.10');
    expect(cidrParts('10.5.3.7/16')).toEqual({ family: 4, ip: '10.5.3.7', len: 16 });
    expect(cidrParts('FD05::9/64')).toEqual({ family: 6, ip: 'fd05::9', len: 64 });
  });
  it('MACs: canonical fast, other spellings normalised, malformed rejected', () => {
    expect(macToBytes('0e:42:00:00:01:ff').toString('hex')).toBe('0e42000001ff');
    expect(macToBytes('0E-42-00-00-01-FF').toString('hex')).toBe('0e42000001ff');
    for (const bad of [
      '0e:42:00:00:01',
      '0e:42:00:00:01:fg',
      '0e:42:00:00:01:ff:',
      '0e4200:00:01:ff1',
    ])
      expect(() => macToBytes(bad), bad).toThrow(TypeError);
  });
  it('rejects malformed input with TypeError', () => {
    expect(() => ipToBytes('10.5.1')).toThrow(TypeError);
    expect(() => cidrParts('10.5.0.0/33')).toThrow(TypeError);
    for (const bad of ['010.5.0.0/16', '10.5.0.256/24', '10.5..0/24', '10.5.0.0/', '10.5.0.0/-1'])
      expect(() => cidrParts(bad), bad).toThrow(TypeError);
  });
});

describe('toNetlinkError: errno parsed in one place', () => {
  it('maps a kernel rejection to E_NETLINK with the errno name', () => {
    const e = toNetlinkError(new Error('Request rejected: EEXIST'), 'routeReplace', '10.5.2.0/24');
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e).toMatchObject({
      code: 'E_NETLINK',
      errno: 'EEXIST',
      op: 'routeReplace',
      object: '10.5.2.0/24',
    });
    expect(e.message).toBe('netlink routeReplace 10.5.2.0/24: EEXIST');
    expect(isRetryable(e)).toBe(false);
    expect(isRetryable(toNetlinkError(new Error('Request rejected: EBUSY'), 'x', 'y'))).toBe(true);
  });
  it('maps the package timeout to a retryable E_NETLINK_TIMEOUT', () => {
    const e = toNetlinkError(new Error('Timeout has been reached'), 'dump routes', 'family 4');
    expect(e).toMatchObject({ code: 'E_NETLINK_TIMEOUT', errno: 'ETIMEDOUT' });
    expect(isRetryable(e)).toBe(true);
  });
  it('maps socket failures to E_NETLINK_SOCKET', () => {
    const e = toNetlinkError(Object.assign(new Error('poll'), { code: 'ENOBUFS' }), 'x', 'y');
    expect(e).toMatchObject({ code: 'E_NETLINK_SOCKET', errno: 'ENOBUFS' });
    expect(toNetlinkError(new Error('weird'), 'x', 'y')).toMatchObject({ errno: 'ESOCKET' });
  });
  it('isAbsent covers the "nothing to delete" answers', () => {
    for (const errno of ['ESRCH', 'ENOENT', 'ENODEV']) {
      expect(isAbsent(toNetlinkError(new Error(`Request rejected: ${errno}`), 'd', 'o'))).toBe(
        true,
      );
    }
    expect(isAbsent(toNetlinkError(new Error('Request rejected: EPERM'), 'd', 'o'))).toBe(false);
  });
});

describe('InFlightLimiter', () => {
  it('never runs more than max at once, in FIFO order', async () => {
    const lim = new InFlightLimiter(3);
    let active = 0;
    let peak = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        lim.run(async () => {
          active++;
          peak = Math.max(peak, active);
          order.push(i);
          await new Promise((r) => setTimeout(r, i % 3));
          active--;
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(order.slice(0, 3)).toEqual([0, 1, 2]);
    expect(lim.inFlight).toBe(0);
    expect(lim.queued).toBe(0);
  });
  it('frees the slot when the task throws', async () => {
    const lim = new InFlightLimiter(1);
    await expect(lim.run(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(await lim.run(() => Promise.resolve(5))).toBe(5);
  });
});
