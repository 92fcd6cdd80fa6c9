/**
 * The `weft` CNI plugin against the REAL reference plugins (/usr/lib/cni bridge + host-local) and the
 * real kernel (issue 6). A test netns plays the host (the plugin runs there via `ip netns exec`), one netns
 * per container; subnet.env, weft's dataDir and host-local's dataDir live in a temp dir, so nothing touches
 * /var/lib/cni or the root namespace. subnet.env says IPMASQ=true, so the bridge adds no NAT rules.
 *
 *   [host netns: weftbr0 10.77.5.1/24] --veth-- [container netns: eth0 10.77.5.x/24, 10.77.0.0/16 via .1]
 *
 * The whole suite runs twice: through the installed plugin (`weft`, the C shim) with a real weftd serving
 * it in the host netns, and through the standalone full plugin (`weft-full`, what the shim falls back to
 * while weftd is down), so both paths keep the same contract.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, sleep, waitFor } from '../../helpers/exec.js';
import { useLeakCheck } from '../../helpers/leaks.js';
import { deleteNetns, ping } from '../../helpers/netns.js';
import { requireCaps } from '../../helpers/require.js';
import { ipJson, useCniHost, type CniCall, CNI_MODES } from './cni-helpers.js';

const runnable = requireCaps('root', 'netns', 'cniPlugins', 'ping');
useLeakCheck();

const SUBNET_ENV =
  'FLANNEL_NETWORK=10.77.0.0/16\nFLANNEL_SUBNET=10.77.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

describe.skipIf(!runnable).each(CNI_MODES)(
  'weft CNI plugin ($mode) with the reference bridge/host-local in a netns host',
  ({ plugin, weftd: withWeftd }) => {
    const host = useCniHost('weft-cni-it-', plugin, withWeftd);
    const { container, call } = host;
    /** A fresh scenario directory with its own subnet.env (unless false), state and IPAM dirs. */
    const scenario = (withSubnetEnv = true) => host.scenario(withSubnetEnv ? SUBNET_ENV : null);

    const expectOk = (r: CniCall): void => {
      expect(r.code, `plugin failed: ${r.stdout} ${r.stderr}`).toBe(0);
    };

    it.each(['0.3.1', '0.4.0', '1.0.0', '1.1.0'])(
      'ADD, CHECK, DEL, DEL again with cniVersion %s',
      async (v) => {
        const s = scenario();
        const ns = await container();
        const id = `ctr-${v.replaceAll('.', '')}`;
        const add = await call('ADD', s.conf(v), { id, ns });
        expectOk(add);
        const res = add.json!;
        expect(res['cniVersion']).toBe(v);
        const ifaces = res['interfaces'] as { name: string; mac?: string; sandbox?: string }[];
        const sb = ifaces.find((i) => i.sandbox === `/var/run/netns/${ns}`)!;
        expect(sb.name).toBe('eth0');
        const [link] = await ipJson<{ address: string; mtu: number }[]>(ns, [
          'link',
          'show',
          'eth0',
        ]);
        expect(sb.mac).toBe(link!.address);
        expect(link!.mtu).toBe(1450);
        const ips = res['ips'] as {
          address: string;
          gateway: string;
          version?: string;
          interface: number;
        }[];
        expect(ips).toHaveLength(1);
        expect(ips[0]!.address).toMatch(/^10\.77\.5\.\d+\/24$/);
        expect(ips[0]!.gateway).toBe('10.77.5.1');
        expect(ips[0]!.interface).toBe(ifaces.indexOf(sb));
        expect('version' in ips[0]!).toBe(v < '1.0.0');
        expect(res['routes']).toEqual([{ dst: '10.77.0.0/16', gw: '10.77.5.1' }]);
        const addr = ips[0]!.address.split('/')[0]!;
        const routes = (await run('ip', ['-n', ns, 'route', 'show'])).stdout;
        expect(routes).toContain('10.77.0.0/16 via 10.77.5.1 dev eth0');
        expect(await ping(host.hostNs, addr, 1)).toBe(true);
        expect(s.stateFiles()).toEqual([`${id}@eth0`]);
        expect(s.ipFiles()).toEqual([addr]);

        const check = await call('CHECK', s.conf(v), { id, ns });
        if (v === '0.3.1') {
          expect(check.json).toMatchObject({ code: 1 });
        } else {
          expectOk(check);
          await run('ip', ['-n', ns, 'route', 'del', '10.77.0.0/16']);
          const broken = await call('CHECK', s.conf(v), { id, ns });
          expect(broken.code).toBe(1);
          expect(broken.json).toMatchObject({ code: 103 });
          expect(String(broken.json!['msg'])).toContain(
            'route 10.77.0.0/16 via 10.77.5.1 is missing',
          );
        }

        expectOk(await call('DEL', s.conf(v), { id, ns }));
        expect(s.stateFiles()).toEqual([]);
        expect(s.ipFiles()).toEqual([]);
        expect(await ipJson(ns, ['link', 'show'])).toHaveLength(1); // only lo
        const again = await call('DEL', s.conf(v), { id, ns });
        expectOk(again);
        expect(again.stdout).toBe('');
      },
    );

    it('dual stack: one address per family, routes to both cluster networks, CHECK and DEL', async () => {
      const s = scenario();
      writeFileSync(
        s.subnetFile,
        SUBNET_ENV + 'FLANNEL_IPV6_NETWORK=fd77::/48\nFLANNEL_IPV6_SUBNET=fd77:0:0:5::1/64\n',
      );
      const ns = await container();
      const add = await call('ADD', s.conf('1.1.0'), { id: 'ds1', ns });
      expectOk(add);
      const ips = (add.json!['ips'] as { address: string }[]).map((i) => i.address);
      expect(ips).toHaveLength(2);
      expect(ips[0]).toMatch(/^10\.77\.5\.\d+\/24$/);
      expect(ips[1]).toMatch(/^fd77:0:0:5::[0-9a-f]+\/64$/);
      expect(add.json!['routes']).toEqual([
        { dst: '10.77.0.0/16', gw: '10.77.5.1' },
        { dst: 'fd77::/48', gw: 'fd77:0:0:5::1' },
      ]);
      expect((await run('ip', ['-n', ns, '-6', 'route', 'show'])).stdout).toContain(
        'fd77::/48 via fd77:0:0:5::1 dev eth0',
      );
      // The gateway address on the bridge may still be in IPv6 DAD for a moment.
      await waitFor(
        'IPv6 ping host → container',
        () => ping(host.hostNs, ips[1]!.split('/')[0]!, 1, 1),
        8000,
        200,
      );
      expectOk(await call('CHECK', s.conf('1.1.0'), { id: 'ds1', ns }));
      await run('ip', ['-n', ns, '-6', 'addr', 'del', ips[1]!, 'dev', 'eth0']);
      const broken = await call('CHECK', s.conf('1.1.0'), { id: 'ds1', ns });
      expect(broken.json).toMatchObject({ code: 103 });
      expect(String(broken.json!['msg'])).toContain(`address ${ips[1]} is missing`);
      expectOk(await call('DEL', s.conf('1.1.0'), { id: 'ds1', ns }));
      expect(s.stateFiles()).toEqual([]);
      // No reservation file of either family is left (only host-local's lock and last_reserved_ip.*).
      expect(
        readdirSync(join(s.ipamDir, 'weftnet')).filter(
          (f) => f !== 'lock' && !f.startsWith('last_'),
        ),
      ).toEqual([]);
    });

    it('FLANNEL_IPMASQ=false makes the bridge masquerade (rules only in the host netns), removed on DEL', async () => {
      const s = scenario();
      writeFileSync(
        s.subnetFile,
        SUBNET_ENV.replace('FLANNEL_IPMASQ=true', 'FLANNEL_IPMASQ=false'),
      );
      const ns = await container();
      expectOk(await call('ADD', s.conf('1.0.0'), { id: 'masq1', ns }));
      const nat = async () =>
        (await run('ip', ['netns', 'exec', host.hostNs, 'iptables', '-t', 'nat', '-S'])).stdout;
      expect(await nat()).toContain('name: \\"weftnet\\" id: \\"masq1\\"');
      expectOk(await call('DEL', s.conf('1.0.0'), { id: 'masq1', ns }));
      expect(await nat()).not.toContain('masq1');
    });

    it('20 containers added in parallel get 20 distinct addresses; parallel DEL releases all', async () => {
      const s = scenario();
      const nss = await Promise.all(Array.from({ length: 20 }, () => container()));
      const adds = await Promise.all(
        nss.map((ns, i) => call('ADD', s.conf('1.0.0'), { id: `par${i}`, ns })),
      );
      adds.forEach(expectOk);
      const addrs = adds.map((a) => (a.json!['ips'] as { address: string }[])[0]!.address);
      expect(new Set(addrs).size).toBe(20);
      expect(s.ipFiles()).toHaveLength(20);
      expect(s.stateFiles()).toHaveLength(20);
      const dels = await Promise.all(
        nss.map((ns, i) => call('DEL', s.conf('1.0.0'), { id: `par${i}`, ns })),
      );
      dels.forEach(expectOk);
      expect(s.ipFiles()).toEqual([]);
      expect(s.stateFiles()).toEqual([]);
    });

    it('DEL succeeds when the netns is already gone, and still releases the address and state', async () => {
      const s = scenario();
      const ns = await container();
      expectOk(await call('ADD', s.conf('1.0.0'), { id: 'gone1', ns }));
      expect(s.ipFiles()).toHaveLength(1);
      await deleteNetns(ns);
      expectOk(await call('DEL', s.conf('1.0.0'), { id: 'gone1', ns }));
      expect(s.ipFiles()).toEqual([]);
      expect(s.stateFiles()).toEqual([]);
      expectOk(await call('DEL', s.conf('1.0.0'), { id: 'gone1', ns }));
    });

    it('CNI_NETNS left as a plain file (its netns mount gone): DEL still releases the address, ADD is refused', async () => {
      const s = scenario();
      const ns = await container();
      expectOk(await call('ADD', s.conf('1.0.0'), { id: 'unmnt1', ns }));
      expect(s.ipFiles()).toHaveLength(1);
      // what a lost bind mount leaves: the empty file on /run's tmpfs (the reference bridge then
      // fails every DEL with "unknown FS magic")
      await run('umount', [`/var/run/netns/${ns}`]);
      expectOk(await call('DEL', s.conf('1.0.0'), { id: 'unmnt1', ns }));
      expect(s.ipFiles()).toEqual([]);
      expect(s.stateFiles()).toEqual([]);
      const add = await call('ADD', s.conf('1.0.0'), { id: 'unmnt2', ns });
      expect(add.json).toMatchObject({
        code: 4,
        msg: expect.stringMatching(/not a network namespace/),
      });
      expect(s.ipFiles()).toEqual([]);
      expect(s.stateFiles()).toEqual([]);
    });

    it('CNI_NETNS naming another kind of namespace (/proc/<pid>/ns/mnt, …/uts): ADD answers code 4 and leaves nothing, DEL succeeds', async () => {
      const s = scenario();
      for (const kind of ['mnt', 'uts']) {
        // this test process' namespaces (pid 1's may be unreadable in a sandbox)
        const env = { CNI_NETNS: `/proc/${process.pid}/ns/${kind}` };
        // before: code 999 from bridge, the state left behind and every DEL failing the same way
        const add = await call('ADD', s.conf('1.0.0'), { id: `kind-${kind}`, env });
        expect(add.json).toMatchObject({
          code: 4,
          msg: expect.stringMatching(/not a network namespace/),
        });
        expect(s.stateFiles()).toEqual([]);
        expect(s.ipFiles()).toEqual([]);
        expectOk(await call('DEL', s.conf('1.0.0'), { id: `kind-${kind}`, env }));
      }
      // a runtime that names the wrong kind on DEL of a real attachment: the address is released
      const ns = await container();
      expectOk(await call('ADD', s.conf('1.0.0'), { id: 'kind-del', ns }));
      expect(s.ipFiles()).toHaveLength(1);
      expectOk(
        await call('DEL', s.conf('1.0.0'), {
          id: 'kind-del',
          ns,
          env: { CNI_NETNS: `/proc/${process.pid}/ns/uts` },
        }),
      );
      expect(s.ipFiles()).toEqual([]);
      expect(s.stateFiles()).toEqual([]);
    });

    it('subnet.env moves to another subnet: the next ADD gets it (the bridge gateway follows), the old attachment still DELs', async () => {
      const s = scenario();
      // a bridge of its own: this test moves its gateway address
      const conf = () => s.conf('1.0.0', { delegate: { bridge: 'weftbr9' } });
      const ns1 = await container();
      expectOk(await call('ADD', conf(), { id: 'move1', ns: ns1 }));
      writeFileSync(s.subnetFile, SUBNET_ENV.replace('10.77.5.1/24', '10.77.6.1/24'));
      const ns2 = await container();
      const r = await call('ADD', conf(), { id: 'move2', ns: ns2 });
      expectOk(r);
      const addr = (r.json!['ips'] as { address: string }[])[0]!.address.split('/')[0]!;
      expect(addr).toMatch(/^10\.77\.6\./);
      expect(await ping(host.hostNs, addr, 1)).toBe(true);
      expectOk(await call('DEL', conf(), { id: 'move1', ns: ns1 }));
      expectOk(await call('DEL', conf(), { id: 'move2', ns: ns2 }));
      expect(s.ipFiles()).toEqual([]);
      expect(s.stateFiles()).toEqual([]);
    });

    it('after a "reboot" without DEL (netns gone, state and reservation kept) ADD of the same id releases the stale attachment', async () => {
      const s = scenario();
      const ns1 = await container();
      const first = await call('ADD', s.conf('1.0.0'), { id: 'reboot1', ns: ns1 });
      expectOk(first);
      await deleteNetns(ns1);
      const ns2 = await container();
      const second = await call('ADD', s.conf('1.0.0'), { id: 'reboot1', ns: ns2 });
      expectOk(second);
      const addr = (second.json!['ips'] as { address: string }[])[0]!.address.split('/')[0]!;
      expect(s.ipFiles()).toEqual([addr]);
      expect(await ping(host.hostNs, addr, 1)).toBe(true);
      // A real duplicate (interface still there) is refused without touching it.
      const dup = await call('ADD', s.conf('1.0.0'), { id: 'reboot1', ns: ns2 });
      expect(dup.json).toMatchObject({ code: 102 });
      expect(await ping(host.hostNs, addr, 1)).toBe(true);
      expectOk(await call('DEL', s.conf('1.0.0'), { id: 'reboot1', ns: ns2 }));
      expect(s.ipFiles()).toEqual([]);
    });

    it('ADD retried after one that never finished (weftd killed while the delegate ran: interface and address there, state without its result) redoes the attachment instead of answering 102', async () => {
      const s = scenario();
      const ns = await container();
      expectOk(await call('ADD', s.conf('1.0.0'), { id: 'cut1', ns }));
      // what weftd leaves when it dies after the delegate ran and before the result was stored (the
      // shim then answers "try again later", code 11): the first state write, without the result
      const file = join(s.dataDir, 'weftnet', 'cut1@eth0');
      const read = () => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      // weftd stores the result just after its answer
      await waitFor('the stored ADD result', () => read()['result'] !== undefined, 5000);
      const st = read();
      delete st['result'];
      writeFileSync(file, JSON.stringify(st));
      expect(s.ipFiles()).toHaveLength(1);
      const retry = await call('ADD', s.conf('1.0.0'), { id: 'cut1', ns });
      expectOk(retry);
      const addr = (retry.json!['ips'] as { address: string }[])[0]!.address.split('/')[0]!;
      // one interface and one reservation: the unfinished attachment's address was released
      expect(s.ipFiles()).toEqual([addr]);
      expect((await ipJson(ns, ['link', 'show'])).map((l) => l['ifname'])).toEqual(['lo', 'eth0']);
      // the interface carries the new address (other scenarios share this bridge and subnet, so a
      // ping could be answered by another test's container)
      expect((await run('ip', ['-n', ns, '-4', '-o', 'addr', 'show', 'eth0'])).stdout).toContain(
        `inet ${addr}/24`,
      );
      // now finished: a duplicate is refused again
      expect((await call('ADD', s.conf('1.0.0'), { id: 'cut1', ns })).json).toMatchObject({
        code: 102,
      });
      expectOk(await call('DEL', s.conf('1.0.0'), { id: 'cut1', ns }));
      expect(s.ipFiles()).toEqual([]);
      expect(s.stateFiles()).toEqual([]);
    });

    it("DEL releases the address even when weft's state file was lost", async () => {
      const s = scenario();
      const ns = await container();
      expectOk(await call('ADD', s.conf('1.0.0'), { id: 'lost1', ns }));
      rmSync(join(s.dataDir, 'weftnet', 'lost1@eth0'));
      expectOk(await call('DEL', s.conf('1.0.0'), { id: 'lost1', ns }));
      expect(s.ipFiles()).toEqual([]);
      expect(await ipJson(ns, ['link', 'show'])).toHaveLength(1);
    });

    it('a failed delegate ADD (interface exists) is undone: no state and no address left behind', async () => {
      const s = scenario();
      const ns = await container();
      await run('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0']);
      const r = await call('ADD', s.conf('1.0.0'), { id: 'dup1', ns });
      expect(r.code).toBe(1);
      expect(String(r.json!['msg'])).toContain('bridge ADD');
      expect(s.stateFiles()).toEqual([]);
      expect(s.ipFiles()).toEqual([]);
    });

    it('garbage stdin → code 6; missing env → code 4 naming the variables; stdout is only the error JSON', async () => {
      const s = scenario();
      const ns = await container();
      const garbage = await call('ADD', '{"cniVersion": "1.0.0", nope', { id: 'g1', ns });
      expect(garbage.code).toBe(1);
      expect(garbage.json).toMatchObject({
        code: 6,
        msg: 'failed to decode network configuration from stdin',
      });
      expect(garbage.stdout.trim().split('\n')).toHaveLength(1);
      const noCmd = await call('', s.conf('1.0.0'), {
        id: 'g1',
        ns,
        env: { CNI_COMMAND: undefined },
      });
      expect(noCmd.json).toMatchObject({
        cniVersion: '1.0.0',
        code: 4,
        msg: 'required env variables [CNI_COMMAND] missing',
      });
      const noNetns = await call('ADD', s.conf('1.0.0'), { id: 'g1' });
      expect(noNetns.json).toMatchObject({
        code: 4,
        msg: 'required env variables [CNI_NETNS] missing',
      });
      expect(s.stateFiles()).toEqual([]);
    });

    it('container ID ../../etc/x is rejected with code 4 and nothing is written anywhere', async () => {
      const s = scenario();
      const ns = await container();
      const before = readdirSync(host.tmp, { recursive: true }).sort();
      for (const cmd of ['ADD', 'DEL', 'CHECK']) {
        const r = await call(cmd, s.conf('1.0.0'), { id: '../../etc/x', ns });
        expect(r.json).toMatchObject({ code: 4, msg: 'invalid characters in containerID' });
      }
      expect(readdirSync(host.tmp, { recursive: true }).sort()).toEqual(before);
      expect(existsSync(s.dataDir)).toBe(false);
      expect(existsSync(join(host.tmp, 'etc'))).toBe(false);
      expect(await ipJson(ns, ['link', 'show'])).toHaveLength(1);
    });

    it('STATUS fails with 50 until subnet.env exists; ADD waits a bounded time, answers 11, or succeeds once it appears', async () => {
      const s = scenario(false);
      const st = await call('STATUS', s.conf('1.1.0'), {});
      expect(st.json).toMatchObject({ code: 50 });
      expect(String(st.json!['msg'])).toContain('subnet.env does not exist');

      const ns = await container();
      const t0 = Date.now();
      const early = await call('ADD', s.conf('1.0.0'), { id: 'early1', ns });
      expect(early.json).toMatchObject({ code: 11 });
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(s.stateFiles()).toEqual([]);

      const waiting = call('ADD', s.conf('1.0.0', { subnetWaitSeconds: 10 }), { id: 'early1', ns });
      await sleep(700);
      writeFileSync(s.subnetFile, SUBNET_ENV);
      expectOk(await waiting);

      expectOk(await call('STATUS', s.conf('1.1.0'), {}));
      writeFileSync(s.subnetFile, 'FLANNEL_NETWORK=garbage\n');
      expect((await call('STATUS', s.conf('1.1.0'), {})).json).toMatchObject({ code: 50 });
      expect((await call('STATUS', s.conf('1.0.0'), {})).json).toMatchObject({ code: 1 });
      // DEL does not need subnet.env.
      rmSync(s.subnetFile);
      expectOk(await call('DEL', s.conf('1.0.0'), { id: 'early1', ns }));
      expect(s.ipFiles()).toEqual([]);
    });

    it('GC releases the state and addresses of attachments not in cni.dev/valid-attachments', async () => {
      const s = scenario();
      const nss = [await container(), await container(), await container()];
      for (const [i, ns] of nss.entries())
        expectOk(await call('ADD', s.conf('1.1.0'), { id: `gc${i}`, ns }));
      expect(s.ipFiles()).toHaveLength(3);
      // The runtime says only gc0 is alive; gc1's netns is gone, gc2's still exists (GC must not need it).
      await deleteNetns(nss[1]!);
      const gc = await call(
        'GC',
        s.conf('1.1.0', { 'cni.dev/valid-attachments': [{ containerID: 'gc0', ifname: 'eth0' }] }),
      );
      expectOk(gc);
      expect(s.stateFiles()).toEqual(['gc0@eth0']);
      expect(s.ipFiles()).toHaveLength(1);
      expectOk(await call('CHECK', s.conf('1.1.0'), { id: 'gc0', ns: nss[0]! }));
      expectOk(await call('DEL', s.conf('1.1.0'), { id: 'gc0', ns: nss[0]! }));
      expect(s.ipFiles()).toEqual([]);
    });

    it('VERSION answers like libcni expects, and start-up is measured', async () => {
      const times: number[] = [];
      let last: CniCall | undefined;
      for (let i = 0; i < 7; i++) {
        last = await call('VERSION', '{"cniVersion":"1.0.0"}', {
          env: { CNI_NETNS: 'dummy', CNI_PATH: 'dummy', CNI_IFNAME: 'dummy' },
        });
        times.push(last.ms);
      }
      expect(last!.json).toEqual({
        cniVersion: '1.0.0',
        supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
      });
      times.sort((a, b) => a - b);
      const base: number[] = [];
      for (let i = 0; i < 7; i++) {
        const t0 = performance.now();
        await run('ip', [
          'netns',
          'exec',
          host.hostNs,
          'env',
          '-i',
          `PATH=${process.env['PATH'] ?? ''}`,
          process.execPath,
          '-e',
          '0',
        ]);
        base.push(performance.now() - t0);
      }
      base.sort((a, b) => a - b);
      console.log(
        `weft VERSION wall time (incl. ip netns exec): median ${times[3]!.toFixed(1)} ms; bare node -e 0: ${base[3]!.toFixed(1)} ms`,
      );
      // Loose on purpose (shared 2-core machine): catches a bundle that pulls in heavy modules, not noise.
      expect(times[3]!).toBeLessThan(base[3]! * 3 + 200);
    });
  },
);
