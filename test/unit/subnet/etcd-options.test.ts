import { describe, expect, it } from 'vitest';
import { buildEtcdOptions, translateEtcdError } from '../../../src/subnet/etcd/client.js';
import {
  answerError,
  EtcdRequestError,
  ENDPOINT_SKIP_MS,
  GRPC,
  HttpTransport,
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
    expect(first.skipUntil - Date.now()).toBeGreaterThan(ENDPOINT_SKIP_MS - 100);
    t.markFailed(second);
    const third = t.pick();
    expect([first, second]).not.toContain(third);
    t.markFailed(third);
    // All skipped: the one whose skip ends first, rather than refusing.
    expect(t.pick()).toBe(first);
    t.close();
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
