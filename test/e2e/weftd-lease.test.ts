/**
 * weftd's lease lifecycle on one simulated host: started while etcd is down it waits (alive, not
 * ready) and comes up when etcd does; a short TTL is renewed in time; SIGHUP, SIGUSR1 and SIGUSR2 are
 * logged and ignored (SIGUSR1 would open Node's debugger, SIGUSR2 would end weftd); SIGTERM exits 0 and
 * leaves the lease, the device, the rules and subnet.env in place (a restart reuses the subnet); the
 * lease taken over by another host makes weftd exit 5 with a clear message.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nsRun, sleep, stopChild, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import {
  metricsText,
  readyz,
  restartWeftd,
  startWeftd,
  subnetsOf,
  useCluster,
  vxlanDevice,
  waitReady,
  type Weftd,
} from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'nft');
useLeakCheck();

describe.skipIf(!runnable)('weftd lease lifecycle', () => {
  const setup = useCluster(1, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } }, [], 'config');
  let w: Weftd;
  const keyOf = (wd: Weftd): string =>
    `${setup.c.prefix}/subnets/${subnetsOf(wd).subnet.replace('/', '-')}`;

  it('started while etcd is down: alive and not ready, ready once etcd is back', async () => {
    const { c } = setup;
    await c.etcd.kill();
    w = startWeftd(c, c.topo.hosts[0]!, ['--subnet-lease-ttl=6', '--metrics-port=9101']);
    await waitFor('health server', async () => (await readyz(w)) === 503, 15_000, 200);
    await sleep(2000);
    expect(w.child.exitCode).toBeNull();
    expect(await readyz(w)).toBe(503);
    await c.etcd.start();
    await waitReady(w, 30_000);
    expect(await readyz(w)).toBe(200);
  });

  it('renews a short-TTL lease before it expires', async () => {
    const { c } = setup;
    await sleep(8000); // > TTL: without renewal etcd would have dropped the key
    expect(await c.etcd.etcdctl(['get', '--print-value-only', keyOf(w)])).toContain(
      '"PublicIP":"198.18.0.1"',
    );
    expect(w.logs).toContain('"msg":"lease renewed"');
    const m = await metricsText(w, 9101); // the separate --metrics-port
    expect(m).toMatch(/weft_lease_renewals_total [1-9]/);
    expect(m).toMatch(/weft_etcd_requests_total [1-9]/);
    expect(m).toMatch(/weft_lease_expiration_timestamp_seconds [1-9]/);
  });

  it('SIGHUP does not stop it: logged, still alive and ready', async () => {
    w.child.kill('SIGHUP');
    await waitFor('SIGHUP log line', () => w.logs.includes('SIGHUP ignored'), 5000, 100);
    await sleep(300);
    expect(w.child.exitCode).toBeNull();
    expect(w.child.signalCode).toBeNull();
    expect(await readyz(w)).toBe(200);
  });

  it('SIGUSR1 opens no debugger: logged, nothing listens on 9229, still alive and ready', async () => {
    // Node's default for SIGUSR1 starts the inspector on 127.0.0.1:9229: any local user could then run
    // code in weftd (root). `kill -USR1` is a common "reopen your logs" habit (logrotate scripts).
    w.child.kill('SIGUSR1');
    await waitFor('SIGUSR1 log line', () => w.logs.includes('SIGUSR1 ignored'), 5000, 100);
    await sleep(500);
    expect(w.logs).not.toContain('Debugger listening');
    const listening = await nsRun(w.host.netns, 'ss', ['-Htln', 'sport = :9229']);
    expect(listening.stdout.trim()).toBe('');
    expect(w.child.exitCode).toBeNull();
    expect(await readyz(w)).toBe(200);
    // SIGUSR2's default action is to exit: the same habit must not stop weftd
    w.child.kill('SIGUSR2');
    await waitFor('SIGUSR2 log line', () => w.logs.includes('SIGUSR2 ignored'), 5000, 100);
    await sleep(300);
    expect(w.child.exitCode).toBeNull();
    expect(await readyz(w)).toBe(200);
  });

  it('SIGTERM exits 0 and leaves lease, device, rules and subnet.env; a restart reuses the subnet', async () => {
    const { c } = setup;
    const subnet = subnetsOf(w).subnet;
    await stopChild(w.child);
    expect(w.child.exitCode).toBe(0);
    expect(w.logs).toContain('the lease, device, routes and rules stay in place');
    const ns = w.host.netns;
    expect(await vxlanDevice(ns)).not.toBeNull();
    expect((await nsRun(ns, 'nft', ['list', 'tables'])).stdout).toContain('table ip weft');
    expect(existsSync(w.subnetFile)).toBe(true);
    expect(await c.etcd.etcdctl(['get', '--keys-only', keyOf(w)])).toContain(
      subnet.replace('/', '-'),
    );
    restartWeftd(c, w, ['--subnet-lease-ttl=6']);
    await waitReady(w);
    expect(subnetsOf(w).subnet).toBe(subnet);
  });

  it('exits 5 with a clear message when another host takes the subnet', async () => {
    const { c } = setup;
    const value = JSON.stringify({
      PublicIP: '198.18.0.99',
      PublicIPv6: null,
      BackendType: 'vxlan',
      BackendData: { VNI: 1, VtepMAC: '0e:00:5e:00:99:01' },
    });
    await c.etcd.etcdctl(['put', keyOf(w), value]);
    const code = await Promise.race([w.exit, sleep(15_000).then(() => 'timeout')]);
    expect(code, w.logs.slice(-2000)).toBe(5);
    expect(w.logs).toMatch(/lease lost: subnet lease .* is now held by host 198\.18\.0\.99/);
  });
});
