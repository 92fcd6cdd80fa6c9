/**
 * CNI_NETNS naming the host's own network namespace (src/cni/host-netns.ts), through the shim → weftd and
 * the standalone plugin, with the real bridge/host-local in a test netns that plays the host. Without the
 * guard, ADD made the host the "container" (its interface, address and a cluster route in the host) and
 * DEL deleted the host interface named CNI_IFNAME (here `uplink0`, on a real host `eth0`).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../helpers/exec.js';
import { useLeakCheck } from '../../helpers/leaks.js';
import { createNetns, deleteNetns, uniquePrefix } from '../../helpers/netns.js';
import { requireCaps } from '../../helpers/require.js';
import { callPlugin, installPlugin, ipJson, startCniWeftd, type CniWeftd } from './cni-helpers.js';

const runnable = requireCaps('root', 'netns', 'cniPlugins');
useLeakCheck();

const SUBNET_ENV =
  'FLANNEL_NETWORK=10.77.0.0/16\nFLANNEL_SUBNET=10.77.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

describe.skipIf(!runnable).each([
  { mode: 'shim → weftd', plugin: 'weft', withWeftd: true },
  { mode: 'standalone weft-full', plugin: 'weft-full', withWeftd: false },
] as const)('CNI_NETNS = the host netns ($mode)', ({ plugin, withWeftd }) => {
  let tmp: string;
  let binDir: string;
  let hostNs: string;
  let ctrNs: string;
  let weftd: CniWeftd | undefined;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'weft-cni-hostns-'));
    binDir = await installPlugin();
    const prefix = uniquePrefix();
    hostNs = await createNetns(`${prefix}h`);
    ctrNs = await createNetns(`${prefix}c`);
    // The host's uplink stand-in: a DEL naming it must never delete it.
    await run('ip', ['-n', hostNs, 'link', 'add', 'uplink0', 'type', 'veth', 'peer', 'uplink0p']);
    writeFileSync(join(tmp, 'subnet.env'), SUBNET_ENV);
    mkdirSync(join(tmp, 'ipam'));
    if (withWeftd) weftd = await startCniWeftd(hostNs, tmp);
  });
  afterAll(async () => {
    await weftd?.stop();
    if (ctrNs) await deleteNetns(ctrNs);
    if (hostNs) await deleteNetns(hostNs);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    if (binDir) rmSync(binDir, { recursive: true, force: true });
  });

  const conf = (): string =>
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'weftnet',
      type: 'weft',
      subnetFile: join(tmp, 'subnet.env'),
      dataDir: join(tmp, 'state'),
      subnetWaitSeconds: 0.5,
      ipam: { dataDir: join(tmp, 'ipam') },
      delegate: { bridge: 'weftbr0' },
      ...(weftd ? { daemonSocket: weftd.socket } : {}),
    });
  const call = (command: string, id: string, netns: string, ifname: string) =>
    callPlugin({
      hostNs,
      binDir,
      plugin,
      command,
      stdin: conf(),
      containerId: id,
      ifname,
      env: { CNI_NETNS: netns },
    });
  const reserved = (): string[] =>
    existsSync(join(tmp, 'ipam', 'weftnet'))
      ? readdirSync(join(tmp, 'ipam', 'weftnet')).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f))
      : [];
  const hostLinks = async (): Promise<string[]> =>
    (await ipJson<{ ifname: string }[]>(hostNs, ['link', 'show'])).map((l) => l.ifname);

  it('ADD is refused with code 4 naming CNI_NETNS; nothing lands in the host', async () => {
    for (const netns of ['/proc/self/ns/net', `/var/run/netns/${hostNs}`]) {
      const r = await call('ADD', `host-${plugin}`, netns, 'ctr9');
      expect(r.code, r.stdout).toBe(1);
      expect(r.json?.['code']).toBe(4);
      expect(String(r.json?.['msg'])).toContain(`CNI_NETNS "${netns}" is this host's own`);
    }
    expect(await hostLinks()).not.toContain('ctr9');
    const routes = await ipJson<{ dst: string }[]>(hostNs, ['route', 'show']);
    expect(routes.map((x) => x.dst)).not.toContain('10.77.0.0/16');
    expect(reserved()).toEqual([]);
  });

  it('DEL releases the address but never deletes the host interface named CNI_IFNAME', async () => {
    const id = `ctr-${plugin}`;
    const add = await call('ADD', id, `/var/run/netns/${ctrNs}`, 'uplink0');
    expect(add.code, add.stdout).toBe(0);
    expect(reserved()).toHaveLength(1);
    const del = await call('DEL', id, '/proc/self/ns/net', 'uplink0');
    expect(del.code, del.stdout).toBe(0);
    expect(await hostLinks()).toContain('uplink0');
    expect(reserved()).toEqual([]);
    // Without state too (already deleted): still no host interface touched.
    const again = await call('DEL', id, '/proc/self/ns/net', 'uplink0');
    expect(again.code, again.stdout).toBe(0);
    expect(await hostLinks()).toContain('uplink0');
    // The container's own interface is left for its netns' removal (the runtime's job).
    await run('ip', ['-n', ctrNs, 'link', 'del', 'uplink0']);
  });
});
