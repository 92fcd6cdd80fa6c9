/**
 * Child process for the "no timers left behind" test: acquires, keeps and watches a lease with a short
 * TTL, then aborts and closes. It must exit by itself: no timer, kept-alive connection or watch of the
 * etcd client may outlive close() (docs/dependencies.md §4). Prints "closed" when close() has returned.
 * argv: <endpoint> <prefix>
 */
import { createEtcdSubnetManager } from '../../../src/subnet/etcd-manager.js';
import { nullLogger } from '../../../src/log/logger.js';

const [endpoint, prefix] = process.argv.slice(2);
const m = createEtcdSubnetManager({
  endpoints: [endpoint!],
  prefix: prefix!,
  ttlSeconds: 2,
  renewMarginSeconds: 1,
  log: nullLogger,
});
const ac = new AbortController();
const lease = await m.acquireLease({
  publicIp: '198.18.0.1',
  publicIpv6: null,
  backendType: 'vxlan',
});
const keeping = m.keepLease(lease, ac.signal);
const watching = (async () => {
  for await (const batch of m.watchLeases(lease, ac.signal)) void batch;
})();
await new Promise((r) => setTimeout(r, 2500));
ac.abort();
await Promise.all([keeping, watching]);
await m.close();
console.log('closed');
