/**
 * `weftctl status` against a real etcd with a lease weftd refuses (a multicast PublicIP): the summary
 * must say the lease is refused (bad data in etcd), not that the kernel holds wrong entries for it —
 * weftd programs nothing for a refused lease, so the kernel is right. runCli runs in-process and only
 * reads this process' network namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run.js';
import { startEtcd, type EtcdFixture } from '../helpers/etcd.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('etcd', 'etcdctl');
useLeakCheck();

describe.skipIf(!runnable)('weftctl status with a refused peer lease', () => {
  let etcd: EtcdFixture;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('counts it as refused, not as wrong in the kernel', async () => {
    const prefix = etcd.prefix('status-refused');
    await etcd.etcdctl([
      'put',
      `${prefix}/config`,
      JSON.stringify({ Network: '10.7.0.0/16', Backend: { Type: 'vxlan' } }),
    ]);
    await etcd.etcdctl([
      'put',
      `${prefix}/subnets/10.7.3.0-24`,
      JSON.stringify({
        PublicIP: '224.0.0.9',
        BackendType: 'vxlan',
        BackendData: { VNI: 1, VtepMAC: '0e:00:00:00:07:03' },
      }),
    ]);
    const status = async (json: boolean) =>
      runCli(
        [
          'status',
          ...(json ? ['--json'] : []),
          `--etcd-endpoints=${etcd.endpoints.join(',')}`,
          `--etcd-prefix=${prefix}`,
          '--subnet-file=/nonexistent/subnet.env',
          '--healthz-port=0',
          '--timeout=5',
        ],
        {
          env: {},
          stdoutIsTty: false,
          stderrIsTty: false,
          writeErr: () => {},
          readStdin: async () => '',
        },
      );
    const doc = JSON.parse((await status(true)).stdout) as { problems: string[] };
    expect(doc.problems).toContain(
      '1 peer lease refused by weftd: invalid or conflicting (weftctl peers)',
    );
    expect(doc.problems.join('\n')).not.toMatch(/wrong/);
    const human = await status(false);
    expect(human.exitCode).toBe(1);
    expect(human.stdout).toMatch(/peers: +1 leases, kernel entries ok, 1 refused/);
    expect(human.stdout).not.toMatch(/wrong in the kernel/);
  });
});
