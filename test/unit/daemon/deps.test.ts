import { describe, expect, it } from 'vitest';
import { etcdManagerOptions } from '../../../src/daemon/deps.js';
import { parseOptions } from '../../../src/daemon/options.js';
import { nullLogger } from '../../../src/log/logger.js';

describe('lease manager options from the flags', () => {
  it("uses flannel's 24 h TTL and the renew margin in seconds", () => {
    const o = etcdManagerOptions(
      parseOptions(['--etcd-endpoints=http://198.18.0.254:2379'], {}),
      nullLogger,
    );
    expect(o).toMatchObject({
      endpoints: ['http://198.18.0.254:2379'],
      prefix: '/coreos.com/network',
      ttlSeconds: 86_400,
      renewMarginSeconds: 3600,
    });
    expect(o.tls).toBeUndefined();
    expect(o.username).toBeUndefined();
  });

  it('renews at a third of a test TTL shorter than the margin', () => {
    const o = etcdManagerOptions(parseOptions(['--subnet-lease-ttl=30'], {}), nullLogger);
    expect(o.ttlSeconds).toBe(30);
    expect(o.renewMarginSeconds).toBe(10);
  });

  it('passes TLS files (a CA alone too) and auth', () => {
    const o = etcdManagerOptions(
      parseOptions(
        [
          '--etcd-cafile=/ca.pem',
          '--etcd-certfile=/c.pem',
          '--etcd-keyfile=/k.pem',
          '--etcd-username=u',
          '--etcd-password=p',
        ],
        {},
      ),
      nullLogger,
    );
    expect(o.tls).toEqual({ caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' });
    expect(o).toMatchObject({ username: 'u', password: 'p' });
    expect(etcdManagerOptions(parseOptions(['--etcd-cafile=/ca.pem'], {}), nullLogger).tls).toEqual(
      {
        caFile: '/ca.pem',
      },
    );
  });
});
