/**
 * `weftctl status` and `doctor` after the network config in etcd was changed under a running weftd
 * (weftd reads it only at start): both show what weftd runs (its lease's backend, subnet.env's network),
 * flag the difference with the fix (restart weftd) and exit 1 (README's weftctl exit codes: a problem
 * found). Before the fix status exited 0 and showed the new backend from etcd as if weftd ran it.
 */
import { describe, expect, it } from 'vitest';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { DOCTOR_SCHEMA, STATUS_SCHEMA, checkedJson } from '../unit/cli/schema.js';
import { putConfig, runWeftctl, useCluster } from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'nft');
useLeakCheck();

const VXLAN = { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } };
const HOST_GW = { Network: '10.5.0.0/16', Backend: { Type: 'host-gw' } };

interface StatusJson {
  ok: boolean;
  config: { backend: string } | null;
  running: { backend: string | null; network: string | null };
  problems: string[];
}
interface DoctorJson {
  checks: { id: string; status: string; message: string; fixes: string[] }[];
}

describe.skipIf(!runnable)('weftctl after a runtime network-config change', () => {
  const setup = useCluster(2, VXLAN, [], 'weftd');

  const status = async (): Promise<{ code: number; out: string; json: StatusJson }> => {
    const { c, d } = setup;
    const r = await runWeftctl(c, d[0]!, ['status', '--json']);
    const human = await runWeftctl(c, d[0]!, ['status', '--color=never']);
    return {
      code: r.code,
      out: human.stdout,
      json: checkedJson(['status', '--json'], r.stdout, STATUS_SCHEMA) as unknown as StatusJson,
    };
  };

  it('status and doctor show the backend weftd runs, flag the changed config and exit 1', async () => {
    const { c, d } = setup;
    const before = await status();
    expect(before.code, JSON.stringify(before.json)).toBe(0);
    expect(before.json.running).toEqual({ backend: 'vxlan', network: '10.5.0.0/16' });

    await putConfig(c, HOST_GW);
    const after = await status();
    expect(after.code, after.out).toBe(1);
    expect(after.json.ok).toBe(false);
    expect(after.json.config?.backend).toBe('host-gw');
    expect(after.json.running.backend).toBe('vxlan');
    expect(after.json.problems.join('\n')).toMatch(
      /weftd runs the vxlan backend, the network config in etcd says host-gw: restart weftd/,
    );
    expect(after.out).toMatch(/backend:\s+weftd runs vxlan; config in etcd: host-gw/);

    const doc = await runWeftctl(c, d[0]!, ['doctor', '--json', '--no-probe']);
    expect(doc.code).toBe(1);
    const checks = (
      checkedJson(['doctor', '--json'], doc.stdout, DOCTOR_SCHEMA) as unknown as DoctorJson
    ).checks;
    const drift = checks.find((x) => x.id === 'config-applied');
    expect(drift, JSON.stringify(checks)).toMatchObject({ status: 'fail' });
    expect(drift!.message).toMatch(/weftd runs the vxlan backend/);
    expect(drift!.fixes.join('\n')).toMatch(/restart weftd/);

    // the config put back: nothing to flag any more
    await putConfig(c, VXLAN);
    const back = await status();
    expect(back.code, back.out).toBe(0);
  });
});
