import { describe, expect, it } from 'vitest';
import { GRPCUnavailableError } from 'etcd3';
import { buildEtcdOptions, translateEtcdError } from '../../../src/subnet/etcd/client.js';
import { hasCode, isRetryable } from '../../../src/errors.js';

const base = { requestTimeoutMs: 1000 };

describe('etcd client options', () => {
  it('accepts plain endpoints and strips a trailing slash', () => {
    const o = buildEtcdOptions({
      ...base,
      endpoints: ['http://127.0.0.1:2379/', 'http://10.0.0.1:2379'],
    });
    expect(o.hosts).toEqual(['http://127.0.0.1:2379', 'http://10.0.0.1:2379']);
    expect(o.credentials).toBeUndefined();
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
    expect(o.credentials).toBeUndefined(); // etcd3 then builds TLS credentials itself for https hosts
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

  it('translates etcd3 errors once, into codes', () => {
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
  const ctx = { signal: new AbortController().signal, attempt: 0 };
  type Policy = { execute<T>(fn: (c: typeof ctx) => Promise<T>): Promise<T> };
  const hostPolicy = (endpoints: string[]): Policy => {
    const o = buildEtcdOptions({ ...base, endpoints });
    return o.faultHandling!.host!('x') as unknown as Policy;
  };

  it('keeps every connection alive with gRPC keepalive pings etcd accepts (≥ 5 s apart)', () => {
    const o = buildEtcdOptions({ ...base, endpoints: ['http://a:1'] });
    expect(o.grpcOptions?.['grpc.keepalive_time_ms']).toBeGreaterThan(5000);
    expect(o.grpcOptions?.['grpc.keepalive_timeout_ms']).toBeGreaterThan(0);
  });

  it('with several endpoints, skips one for a while after a transport failure only', async () => {
    const p = hostPolicy(['http://a:1', 'http://b:2']);
    const unavailable = new GRPCUnavailableError('14 UNAVAILABLE: etcdserver: no leader');
    await expect(p.execute(() => Promise.reject(new Error('key not found')))).rejects.toThrow();
    await expect(p.execute(async () => 'ok')).resolves.toBe('ok'); // not a transport error
    await expect(p.execute(() => Promise.reject(unavailable))).rejects.toBe(unavailable);
    let called = false;
    await expect(
      p.execute(async () => {
        called = true;
        return 'ok';
      }),
    ).rejects.toThrow(/skipped/);
    expect(called).toBe(false);
  });

  it('with one endpoint, never refuses a call', async () => {
    const p = hostPolicy(['http://a:1']);
    const unavailable = new GRPCUnavailableError('14 UNAVAILABLE');
    await expect(p.execute(() => Promise.reject(unavailable))).rejects.toBe(unavailable);
    await expect(p.execute(async () => 'ok')).resolves.toBe('ok');
  });
});
