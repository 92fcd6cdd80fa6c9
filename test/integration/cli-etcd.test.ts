/**
 * weftctl's etcd commands against a real etcd on 127.0.0.1 (no network namespaces): config get/set/
 * validate, leases (a lease the real lease manager acquired, a reservation, a hostile key and value),
 * lease reserve/release, the clock sample, and the exit codes and JSON error documents when etcd is
 * unreachable or the TLS flags are half given. runCli runs in-process; nothing touches the kernel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../../src/cli/run.js';
import { sampleEtcdClock } from '../../src/cli/etcd-view.js';
import { parseCliOptions } from '../../src/cli/options.js';
import { createEtcdSubnetManager, type EtcdSubnetManager } from '../../src/subnet/etcd-manager.js';
import { nullLogger } from '../../src/log/logger.js';
import { startEtcd, type EtcdFixture } from '../helpers/etcd.js';
import { etcdWriter } from '../helpers/etcd-writer.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import {
  CONFIG_SCHEMA,
  checkedJson,
  LEASES_SCHEMA,
  LEASE_ACTION_SCHEMA,
  type Schema,
} from '../unit/cli/schema.js';

const runnable = requireCaps('etcd', 'etcdctl');
useLeakCheck();

describe.skipIf(!runnable)('weftctl against a real etcd', () => {
  let etcd: EtcdFixture;
  let prefix: string;
  let manager: EtcdSubnetManager;
  /** Fixed subnets written by these tests (moved off the random lease when it collides). */
  let reservedNet = '10.7.9.0';
  let freeNet = '10.7.77.0';

  const io = (stdin = ''): CliIo => ({
    env: {},
    stdoutIsTty: false,
    stderrIsTty: false,
    writeErr: () => {},
    readStdin: async () => stdin,
  });

  async function ctl(
    args: string[],
    schema?: Schema,
    stdin?: string,
  ): Promise<{ code: number; json: Record<string, unknown>; stdout: string }> {
    const r = await runCli(
      [
        ...args,
        `--etcd-endpoints=${etcd.endpoints.join(',')}`,
        `--etcd-prefix=${prefix}`,
        '--timeout=5',
      ],
      io(stdin),
    );
    return { code: r.exitCode, json: checkedJson(args, r.stdout, schema), stdout: r.stdout };
  }

  beforeAll(async () => {
    etcd = await startEtcd();
    prefix = etcd.prefix('cli');
  });
  afterAll(async () => {
    await manager?.close();
    await etcd?.stop();
  });

  it('config get says when the config is absent (exit 6)', async () => {
    const r = await ctl(['config', 'get', '--json'], CONFIG_SCHEMA);
    expect(r.code).toBe(6);
    expect(r.json).toMatchObject({ ok: false, raw: null });
  });

  it('config set writes only a config weftd accepts', async () => {
    const bad = await ctl(
      ['config', 'set', '--json', '-'],
      CONFIG_SCHEMA,
      '{"Network":"10.7.0.0/16","SubnetMin":"10.8.0.0"}',
    );
    expect(bad.code).toBe(3);
    expect(bad.json).toMatchObject({ written: false });
    expect(await etcd.etcdctl(['get', `${prefix}/config`])).toBe('');
    const good = await ctl(
      ['config', 'set', '{ "Network": "10.7.0.0/16", "Backend": {"Type": "vxlan"} }', '--json'],
      CONFIG_SCHEMA,
    );
    expect(good.code).toBe(0);
    expect((await etcd.etcdctl(['get', '--print-value-only', `${prefix}/config`])).trim()).toBe(
      '{"Network":"10.7.0.0/16","Backend":{"Type":"vxlan"}}',
    );
    const get = await ctl(['config', 'get']);
    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(/"Network": "10\.7\.0\.0\/16"[\s\S]*valid: +yes/);
  });

  it('leases shows a real lease with its TTL, a reservation, and a hostile key as invalid (exit 1)', async () => {
    manager = createEtcdSubnetManager({
      endpoints: etcd.endpoints,
      prefix,
      ttlSeconds: 600,
      renewMarginSeconds: 60,
      log: nullLogger,
    });
    const lease = await manager.acquireLease({
      publicIp: '198.18.0.1',
      publicIpv6: null,
      backendType: 'vxlan',
      backendData: { VNI: 1, VtepMAC: 'aa:00:00:00:00:01' },
    });
    const clean = await ctl(['leases', '--json'], LEASES_SCHEMA);
    expect(clean.code).toBe(0);
    expect(clean.json['leases']).toEqual([
      expect.objectContaining({
        key: lease.key,
        publicIp: '198.18.0.1',
        vtepMac: 'aa:00:00:00:00:01',
        reserved: false,
      }),
    ]);
    const ttl = (clean.json['leases'] as { expiresInSeconds: number }[])[0]!.expiresInSeconds;
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);
    await etcd.etcdctl(['put', `${prefix}/subnets/evil\u001b[2J`, '{"PublicIP":"x"}']);
    // The fixed subnets these tests write must not be the one the manager picked at random.
    reservedNet = lease.key === '10.7.9.0-24' ? '10.7.10.0' : '10.7.9.0';
    freeNet = lease.key === '10.7.77.0-24' ? '10.7.78.0' : '10.7.77.0';
    await etcd.etcdctl(['put', `${prefix}/subnets/${reservedNet}-24`, '{"PublicIP":"198.18.0.9"}']);
    const dirty = await ctl(['leases', '--json'], LEASES_SCHEMA);
    expect(dirty.code).toBe(1);
    const rows = dirty.json['leases'] as Record<string, unknown>[];
    expect(rows.find((r) => r['key'] === `${reservedNet}-24`)).toMatchObject({
      reserved: true,
      expiresInSeconds: null,
      backendType: 'udp',
    });
    expect(rows.find((r) => String(r['key']).startsWith('evil'))).toMatchObject({
      problem: expect.stringMatching(/not a subnet key/),
    });
    const human = await ctl(['leases']);
    expect(human.stdout).not.toContain('\u001b');
    expect(human.stdout).toMatch(/never \(reserved\)/);
    await etcd.etcdctl(['del', `${prefix}/subnets/evil\u001b[2J`]);
  });

  it('lease reserve detaches a live lease from its TTL (compare-and-swap); release deletes a reservation', async () => {
    const key = (await ctl(['leases', '--json'])).json['leases'] as {
      key: string;
      publicIp: string;
    }[];
    const mine = key.find((l) => l.publicIp === '198.18.0.1')!.key;
    const wrongHolder = await ctl([
      'lease',
      'reserve',
      mine.replace('-', '/'),
      '--public-ip=198.18.0.2',
    ]);
    expect(wrongHolder.code).toBe(5);
    const r = await ctl(
      ['lease', 'reserve', mine.replace('-', '/'), '--json'],
      LEASE_ACTION_SCHEMA,
    );
    expect(r.json).toMatchObject({ action: 'reserved', key: mine });
    const kv = JSON.parse(
      await etcd.etcdctl(['get', '-w', 'json', `${prefix}/subnets/${mine}`]),
    ) as { kvs: { lease?: number }[] };
    expect(kv.kvs[0]!.lease ?? 0).toBe(0);
    expect(
      (await ctl(['lease', 'reserve', mine, '--json'], LEASE_ACTION_SCHEMA)).json['action'],
    ).toBe('unchanged');
    const rel = await ctl(['lease', 'release', `${reservedNet}/24`, '--json'], LEASE_ACTION_SCHEMA);
    expect(rel.code).toBe(0);
    expect(await etcd.etcdctl(['get', `${prefix}/subnets/${reservedNet}-24`])).toBe('');
    expect((await ctl(['lease', 'release', `${reservedNet}/24`])).code).toBe(6);
    expect((await ctl(['lease', 'reserve', `${freeNet}/24`])).code).toBe(2); // free: needs --public-ip
  });

  it('lists 300 leases (one etcd lease each, TTL looked up 64 at a time) within 3 s', async () => {
    const big = etcd.prefix('cli-big');
    const client = etcdWriter(etcd.endpoints);
    try {
      await Promise.all(
        Array.from({ length: 300 }, async (_, n) => {
          const lease = await client.grant(600);
          const ip = `198.18.${1 + Math.floor(n / 250)}.${1 + (n % 250)}`;
          await client.put(
            `${big}/subnets/10.${8 + Math.floor(n / 256)}.${n % 256}.0-24`,
            JSON.stringify({ PublicIP: ip, PublicIPv6: null, BackendType: 'host-gw' }),
            lease,
          );
        }),
      );
    } finally {
      client.close();
    }
    const t0 = performance.now();
    const r = await runCli(
      ['leases', '--json', `--etcd-endpoints=${etcd.endpoints.join(',')}`, `--etcd-prefix=${big}`],
      io(),
    );
    const ms = performance.now() - t0;
    expect(r.exitCode).toBe(0);
    const leases = (JSON.parse(r.stdout) as { leases: { expiresInSeconds: number }[] }).leases;
    expect(leases).toHaveLength(300);
    expect(leases.every((l) => l.expiresInSeconds > 500)).toBe(true);
    expect(ms).toBeLessThan(3000);
    console.log(`weftctl leases: 300 leases in ${ms.toFixed(0)} ms`);
  });

  it('reads the etcd server clock (HTTP Date of /version)', async () => {
    const s = await sampleEtcdClock(
      parseCliOptions(['doctor', `--etcd-endpoints=${etcd.endpoints[0]}`], {}),
    );
    expect(s.error).toBeNull();
    expect(Math.abs(s.skewSeconds!)).toBeLessThan(2);
  });

  it('etcd unreachable → exit 4 with a JSON error; half a TLS config → exit 4 naming the flag', async () => {
    const r = await runCli(
      ['leases', '--json', '--etcd-endpoints=http://127.0.0.1:1', '--timeout=1'],
      io(),
    );
    expect(r.exitCode).toBe(4);
    expect(JSON.parse(r.stdout)).toMatchObject({
      ok: false,
      error: { code: 'E_ETCD_UNAVAILABLE' },
    });
    let err = '';
    const tls = await runCli(
      ['leases', '--etcd-endpoints=https://127.0.0.1:1', '--etcd-certfile=/nonexistent.pem'],
      { ...io(), writeErr: (t) => (err += t) },
    );
    expect(tls.exitCode).toBe(4);
    expect(err).toMatch(/certFile \/nonexistent\.pem given without keyFile/);
  });
});
