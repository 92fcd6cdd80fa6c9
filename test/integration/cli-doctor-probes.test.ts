/**
 * `weftctl doctor`'s underlay probes on a host cut off from its peers: every peer's public IP answers
 * ARP but drops ICMP, so each probe waits out ping's timeout (1.2 s). doctor must stay usable with many
 * peers: 96 of them take two rounds of probes, not twelve (it pinged 8 at a time: 200 peers took 31 s,
 * 10,000 half an hour).
 *
 *   [host netns: etcd on 127.0.0.1, v0 198.18.0.1/16] --veth-- [underlay netns: 198.18.1.0/24 local, ICMP dropped]
 *
 * weftctl (the built bin/weftctl.js) runs inside the host netns; no packet leaves the two namespaces.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nsRun, run } from '../helpers/exec.js';
import { startEtcd, type EtcdFixture } from '../helpers/etcd.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { createNetns, deleteNetns, uniquePrefix } from '../helpers/netns.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft');
useLeakCheck();

const WEFTCTL = resolve(import.meta.dirname, '../../bin/weftctl.js');
const PEERS = 96;

describe.skipIf(!runnable)('weftctl doctor probing many unreachable peers', () => {
  let tmp: string;
  let hostNs: string;
  let underNs: string;
  let etcd: EtcdFixture;
  let prefix: string;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'weft-doctor-probes-'));
    const p = uniquePrefix();
    hostNs = await createNetns(`${p}h`);
    underNs = await createNetns(`${p}u`);
    await run('ip', [
      '-n',
      hostNs,
      'link',
      'add',
      'v0',
      'type',
      'veth',
      'peer',
      'v1',
      'netns',
      underNs,
    ]);
    await run('ip', ['-n', hostNs, 'addr', 'add', '198.18.0.1/16', 'dev', 'v0']);
    await run('ip', ['-n', hostNs, 'link', 'set', 'v0', 'up']);
    await run('ip', ['-n', underNs, 'link', 'set', 'v1', 'up']);
    // every peer address is "there" (ARP answers), but no echo ever comes back
    await run('ip', ['-n', underNs, 'route', 'add', 'local', '198.18.1.0/24', 'dev', 'v1']);
    await nsRun(underNs, 'nft', [
      'add table ip weftprobe { chain input { type filter hook input priority 0; ip protocol icmp drop; }; }',
    ]);
    etcd = await startEtcd({ netns: hostNs, host: '127.0.0.1' });
    prefix = etcd.prefix('doctor-probes');
    const leases = [
      [`${prefix}/config`, { Network: '10.8.0.0/16', Backend: { Type: 'vxlan' } }],
      ...Array.from({ length: PEERS + 1 }, (_, n) => [
        `${prefix}/subnets/10.8.${n + 1}.0-24`,
        {
          PublicIP: n === 0 ? '198.18.0.1' : `198.18.1.${n}`,
          BackendType: 'vxlan',
          BackendData: {
            VNI: 1,
            VtepMAC: `aa:00:00:00:00:${(n + 1).toString(16).padStart(2, '0')}`,
          },
        },
      ]),
    ];
    // one process writes them all through etcd's gateway (an etcdctl per key takes seconds)
    const script = `const b64=(s)=>Buffer.from(s).toString('base64');(async()=>{for(const [k,v] of ${JSON.stringify(
      leases,
    )}){const r=await fetch('${etcd.endpoints[0]}/v3/kv/put',{method:'POST',body:JSON.stringify({key:b64(k),value:b64(JSON.stringify(v))})});if(!r.ok)throw new Error(await r.text())}})()`;
    await nsRun(hostNs, process.execPath, ['-e', script]);
    writeFileSync(
      join(tmp, 'subnet.env'),
      'FLANNEL_NETWORK=10.8.0.0/16\nFLANNEL_SUBNET=10.8.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    );
  }, 60_000);
  afterAll(async () => {
    await etcd?.stop();
    if (underNs) await deleteNetns(underNs);
    if (hostNs) await deleteNetns(hostNs);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it(`names each of ${PEERS} unreachable peers within a few probe rounds`, async () => {
    const t0 = performance.now();
    const r = await nsRun(
      hostNs,
      process.execPath,
      [
        WEFTCTL,
        'doctor',
        '--json',
        `--etcd-endpoints=${etcd.endpoints[0]}`,
        `--etcd-prefix=${prefix}`,
        `--subnet-file=${join(tmp, 'subnet.env')}`,
        '--healthz-port=0',
      ],
      { allowFail: true, timeoutMs: 120_000 },
    );
    const s = (performance.now() - t0) / 1000;
    expect(r.code, r.stderr).toBe(1);
    const checks = (JSON.parse(r.stdout) as { checks: { id: string; status: string }[] }).checks;
    const underlay = checks.filter((c) => c.id.startsWith('underlay:'));
    expect(underlay).toHaveLength(PEERS);
    expect(underlay.every((c) => c.status === 'fail')).toBe(true);
    // 12 rounds of 1.2 s before (8 at a time): 15 s
    expect(s).toBeLessThan(8);
    console.log(`doctor, ${PEERS} unreachable peers: ${s.toFixed(1)} s`);
  });
});
