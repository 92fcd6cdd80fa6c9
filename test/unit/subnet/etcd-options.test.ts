import { describe, expect, it, vi } from 'vitest';
import { buildEtcdOptions, translateEtcdError } from '../../../src/subnet/etcd/client.js';
import {
  answerError,
  EtcdRequestError,
  ENDPOINT_SKIP_MS,
  GRPC,
  HttpTransport,
  type Endpoint,
} from '../../../src/subnet/etcd/http-transport.js';
import { hasCode, isRetryable } from '../../../src/errors.js';

const base = { requestTimeoutMs: 1000 };

describe('etcd client options', () => {
  it('accepts plain endpoints and strips a trailing slash', () => {
    const o = buildEtcdOptions({
      ...base,
      endpoints: ['http://127.0.0.1:2379/', 'http://10.0.0.1:2379'],
    });
    expect(o.endpoints).toEqual(['http://127.0.0.1:2379', 'http://10.0.0.1:2379']);
    expect(o.tls).toBeUndefined();
    expect(o.auth).toBeUndefined();
  });

  it.each([
    [[], /none given/],
    [['127.0.0.1:2379'], /"127.0.0.1:2379" is invalid: use http:\/\/host:port/],
    [['http://a:1', 'https://b:2'], /mix http and https/],
    [['http://a:1/path'], /is invalid/],
  ])('rejects endpoints %j', (endpoints, msg) => {
    expect(() => buildEtcdOptions({ ...base, endpoints })).toThrow(msg);
  });

  it('https endpoints without files use TLS with the system roots (no plain-text fallback)', () => {
    const o = buildEtcdOptions({ ...base, endpoints: ['https://etcd:2379'] });
    expect(o.tls).toBeUndefined(); // node:https then verifies against the system roots
    const t = new HttpTransport(o);
    expect(t.endpoints[0]!.secure).toBe(true);
    t.close();
  });

  it('passes username and password', () => {
    expect(
      buildEtcdOptions({ ...base, endpoints: ['http://a:1'], username: 'u', password: 'p' }).auth,
    ).toEqual({
      username: 'u',
      password: 'p',
    });
    expect(() => buildEtcdOptions({ ...base, endpoints: ['http://a:1'], password: 'p' })).toThrow(
      /together/,
    );
  });

  it('translates etcd errors once, into codes', () => {
    expect(
      hasCode(
        translateEtcdError(
          'get',
          new Error('etcdserver: authentication failed, invalid user ID or password'),
        ),
        'E_ETCD_AUTH',
      ),
    ).toBe(true);
    expect(
      hasCode(
        translateEtcdError('put', new Error('etcdserver: requested lease not found')),
        'E_ETCD_LEASE_NOT_FOUND',
      ),
    ).toBe(true);
    expect(
      hasCode(translateEtcdError('watch', new Error('Watcher canceled: ')), 'E_ETCD_COMPACTED'),
    ).toBe(true);
    const down = translateEtcdError('list', new Error('14 UNAVAILABLE: No connection established'));
    expect(hasCode(down, 'E_ETCD_UNAVAILABLE')).toBe(true);
    expect(isRetryable(down)).toBe(true);
    expect(down.message).toBe('etcd list: 14 UNAVAILABLE: No connection established');
  });
});

describe('etcd client failover policy', () => {
  it('casts etcd answers by gRPC code: auth, compaction, no leader', () => {
    const auth = translateEtcdError('get', answerError('etcdserver: invalid auth token', 16));
    expect(hasCode(auth, 'E_ETCD_AUTH')).toBe(true);
    const compacted = translateEtcdError(
      'watch',
      new EtcdRequestError('mvcc: required revision has been compacted', {
        grpcCode: GRPC.OUT_OF_RANGE,
      }),
    );
    expect(hasCode(compacted, 'E_ETCD_COMPACTED')).toBe(true);
    const noLeader = answerError('etcdserver: no leader', GRPC.UNAVAILABLE);
    expect(noLeader.memberFailed && noLeader.notApplied).toBe(true);
    expect(hasCode(translateEtcdError('put', noLeader), 'E_ETCD_UNAVAILABLE')).toBe(true);
    expect(isRetryable(translateEtcdError('put', noLeader))).toBe(true);
    expect(answerError('etcdserver: requested lease not found', GRPC.NOT_FOUND).memberFailed).toBe(
      false,
    );
  });

  it('with several endpoints, stays on one member and skips it for a while after a failure', () => {
    const t = new HttpTransport({ ...base, endpoints: ['http://a:1', 'http://b:2', 'http://c:3'] });
    const first = t.pick();
    expect(t.pick()).toBe(first); // sticky while it answers
    t.markFailed(first);
    const second = t.pick();
    expect(second).not.toBe(first);
    expect(first.skipUntil - performance.now()).toBeGreaterThan(ENDPOINT_SKIP_MS - 100);
    t.markFailed(second);
    const third = t.pick();
    expect([first, second]).not.toContain(third);
    t.markFailed(third);
    // All skipped: the one whose skip ends first, rather than refusing.
    expect(t.pick()).toBe(first);
    t.close();
  });

  it('a failed member is skipped for ENDPOINT_SKIP_MS of elapsed time, however the wall clock is stepped', () => {
    vi.useFakeTimers({ toFake: ['Date', 'performance'], now: new Date('2026-06-01T12:00:00Z') });
    const t = new HttpTransport({ ...base, endpoints: ['http://a:1', 'http://b:2'] });
    try {
      const [first, second] = t.endpoints as [Endpoint, Endpoint];
      t.markFailed(first);
      t.markFailed(second);
      vi.setSystemTime(new Date('2026-06-01T11:00:00Z')); // NTP steps the clock back an hour
      vi.advanceTimersByTime(ENDPOINT_SKIP_MS + 1);
      // Both skips are over: the member in use is kept (not the one "whose skip ends first").
      t.markFailed(second);
      expect(t.pick()).toBe(first);
    } finally {
      vi.useRealTimers();
      t.close();
    }
  });

  it('with one endpoint, never skips it', () => {
    const t = new HttpTransport({ ...base, endpoints: ['http://a:1'] });
    const only = t.pick();
    t.markFailed(only);
    expect(only.skipUntil).toBe(0);
    expect(t.pick()).toBe(only);
    t.close();
  });
});
