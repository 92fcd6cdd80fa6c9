/**
 * The `weft` CNI plugin under inputs a runtime or an exhausted host can hand it, against the REAL reference
 * plugins (/usr/lib/cni bridge + host-local) in test netns (README.md "CNI plugin", src/cni/README.md):
 *  - every address of the host's subnet reserved: ADD answers code 105 naming the subnet and the fix,
 *    leaves no state, no veth and no reservation behind; DEL of the failed container succeeds, and once
 *    an address is free the same container ADDs;
 *  - CNI_ARGS that is not KEY=VALUE pairs: code 4 naming CNI_ARGS before anything is stored; DEL with the
 *    same CNI_ARGS (the runtime repeats them) succeeds;
 *  - CNI_ARGS the delegate refuses (unknown key without IgnoreUnknown, an IP= that does not parse): ADD
 *    answers code 4 and is undone; DEL with them succeeds and releases the address and the state (the Go
 *    library parses CNI_ARGS on DEL too, so weft retries the delegate's DEL without them);
 *  - a "prevResult" that is no JSON object on DEL (weft replays its own stored result): DEL succeeds;
 *  - a relative CNI_PATH entry never names a delegate (it would resolve against weftd's working directory
 *    inside weftd but against the runtime's in the shim that runs it).
 * Runs through the shim with a real weftd and through the standalone plugin, like cni-plugin.test.ts.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../../helpers/exec.js';
import { useLeakCheck } from '../../helpers/leaks.js';
import { requireCaps } from '../../helpers/require.js';
import { ipJson, useCniHost, type CniCall, CNI_MODES } from './cni-helpers.js';

const runnable = requireCaps('root', 'netns', 'cniPlugins');
useLeakCheck();

/** A /30: host-local hands out .2 only (.1 is the bridge's gateway). */
const TINY_SUBNET_ENV =
  'FLANNEL_NETWORK=10.79.0.0/16\nFLANNEL_SUBNET=10.79.5.1/30\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';
const SUBNET_ENV =
  'FLANNEL_NETWORK=10.79.0.0/16\nFLANNEL_SUBNET=10.79.6.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

describe.skipIf(!runnable).each(CNI_MODES)(
  'weft CNI plugin ($mode): exhausted subnet and hostile CNI_ARGS',
  ({ plugin, weftd: withWeftd }) => {
    const host = useCniHost('weft-cni-hostile-', plugin, withWeftd, 120_000);
    const { container } = host;
    let n = 0;

    /** A scenario on a bridge of its own; its netconf is cniVersion 1.0.0 and never waits for subnet.env. */
    function scenario(subnetEnv: string) {
      const bridge = `whb${++n}`;
      const s = host.scenario(subnetEnv, { bridge, subnetWaitSeconds: 0 });
      return { ...s, bridge, conf: s.conf('1.0.0') };
    }

    const call = (command: string, stdin: string, id: string, ns: string, args?: string) =>
      host.call(command, stdin, {
        id,
        ns,
        ...(args !== undefined ? { env: { CNI_ARGS: args } } : {}),
      });
    const ok = (r: CniCall): void => expect(r.code, `${r.stdout} ${r.stderr}`).toBe(0);
    /** Links in a netns other than lo. */
    const links = async (ns: string): Promise<string[]> =>
      (await ipJson<{ ifname: string }[]>(ns, ['link', 'show']))
        .map((l) => l.ifname)
        .filter((name) => name !== 'lo');
    /** Host-side veths enslaved to this scenario's bridge. */
    const hostVeths = async (bridge: string): Promise<string[]> =>
      (
        await ipJson<{ ifname: string; master?: string }[]>(host.hostNs, [
          'link',
          'show',
          'type',
          'veth',
        ])
      )
        .filter((l) => l.master === bridge)
        .map((l) => l.ifname);

    it('every address reserved: code 105 naming the subnet and the fix, nothing leaked, DEL succeeds', async () => {
      const s = scenario(TINY_SUBNET_ENV);
      const [ns1, ns2] = [await container(), await container()];
      ok(await call('ADD', s.conf, 'full1', ns1));
      expect(s.ipFiles()).toEqual(['10.79.5.2']);

      const r = await call('ADD', s.conf, 'full2', ns2);
      expect(r.code).toBe(1);
      expect(r.stdout.trim().split('\n')).toHaveLength(1);
      expect(r.json).toMatchObject({ cniVersion: '1.0.0', code: 105 });
      expect(String(r.json!['msg'])).toContain(
        "no free address left in this host's subnet 10.79.5.0/30",
      );
      expect(String(r.json!['details'])).toMatch(/DEL \(or CNI GC\).*SubnetLen/);
      expect(String(r.json!['details'])).toContain('no IP addresses available');
      // nothing of the failed ADD is left: no state, no reservation, no interface on either side
      expect(s.stateFiles()).toEqual(['full1@eth0']);
      expect(s.ipFiles()).toEqual(['10.79.5.2']);
      expect(await links(ns2)).toEqual([]);
      expect(await hostVeths(s.bridge)).toHaveLength(1);

      // the runtime's DEL after the failed ADD succeeds and touches nothing of full1
      ok(await call('DEL', s.conf, 'full2', ns2));
      expect(s.ipFiles()).toEqual(['10.79.5.2']);
      expect(await links(ns1)).toEqual(['eth0']);

      // once full1 is gone, full2 gets the address
      ok(await call('DEL', s.conf, 'full1', ns1));
      const again = await call('ADD', s.conf, 'full2', ns2);
      ok(again);
      expect(again.json!['ips']).toMatchObject([{ address: '10.79.5.2/30' }]);
      ok(await call('DEL', s.conf, 'full2', ns2));
      expect(s.stateFiles()).toEqual([]);
      expect(s.ipFiles()).toEqual([]);
      expect(await hostVeths(s.bridge)).toEqual([]);
    });

    it.each(['foo', 'a=b=c', 'IgnoreUnknown=1;', 'IgnoreUnknown=1;;K=V'])(
      'CNI_ARGS %j is not KEY=VALUE pairs: code 4 before anything is stored; DEL with it succeeds',
      async (args) => {
        const s = scenario(SUBNET_ENV);
        const ns = await container();
        const r = await call('ADD', s.conf, 'args1', ns, args);
        expect(r.code).toBe(1);
        expect(r.json).toMatchObject({ code: 4 });
        expect(String(r.json!['msg'])).toMatch(/^CNI_ARGS pair ".*" is not KEY=VALUE$/);
        expect(s.stateFiles()).toEqual([]);
        expect(s.ipFiles()).toEqual([]);
        expect(await links(ns)).toEqual([]);
        ok(await call('DEL', s.conf, 'args1', ns, args));
        expect(s.stateFiles()).toEqual([]);
      },
    );

    it.each(['K=V', 'IgnoreUnknown=1;IP=notanip'])(
      'CNI_ARGS %j the delegate refuses: ADD answers code 4 and is undone; DEL with it succeeds',
      async (args) => {
        const s = scenario(SUBNET_ENV);
        const ns = await container();
        const r = await call('ADD', s.conf, 'args2', ns, args);
        expect(r.code).toBe(1);
        expect(r.json).toMatchObject({ code: 4 });
        expect(String(r.json!['msg'])).toMatch(
          /^CNI_ARGS refused by the delegate: bridge ADD: ARGS: /,
        );
        // the undo (the delegate's DEL, retried without CNI_ARGS) removed the state
        expect(s.stateFiles()).toEqual([]);
        expect(s.ipFiles()).toEqual([]);
        ok(await call('DEL', s.conf, 'args2', ns, args));
        expect(s.stateFiles()).toEqual([]);
        expect(await links(ns)).toEqual([]);
        expect(await hostVeths(s.bridge)).toEqual([]);
      },
    );

    it('DEL with a "prevResult" that is no result (a string, a list) still releases everything', async () => {
      const s = scenario(SUBNET_ENV);
      const ns = await container();
      ok(await call('ADD', s.conf, 'prev1', ns));
      const conf = (prevResult: unknown): string =>
        JSON.stringify({ ...(JSON.parse(s.conf) as object), prevResult });
      ok(await call('DEL', conf('garbage'), 'prev1', ns));
      expect([s.stateFiles(), s.ipFiles(), await links(ns), await hostVeths(s.bridge)]).toEqual([
        [],
        [],
        [],
        [],
      ]);
      ok(await call('DEL', conf([1, 2]), 'prev1', ns));
    });

    it("a relative CNI_PATH entry is ignored: a `bridge` beside the runtime's working directory never runs", async () => {
      const s = scenario(SUBNET_ENV);
      const ns = await container();
      // the runtime's cwd holds rel/bridge, a spy that leaves a mark and fails
      const cwd = join(host.tmp, `cwd${n}`);
      const mark = join(cwd, 'spy-ran');
      mkdirSync(join(cwd, 'rel'), { recursive: true });
      writeFileSync(
        join(cwd, 'rel', 'bridge'),
        `#!/bin/sh\ntouch ${mark}\necho '{"code":111,"msg":"spy"}'\nexit 1\n`,
        { mode: 0o755 },
      );
      const inCwd = (command: string) =>
        run(
          'ip',
          [
            'netns',
            'exec',
            host.hostNs,
            'env',
            '-i',
            '-C',
            cwd,
            `PATH=${process.env['PATH'] ?? '/usr/bin:/bin'}`,
            `CNI_COMMAND=${command}`,
            'CNI_CONTAINERID=rel1',
            `CNI_NETNS=/var/run/netns/${ns}`,
            'CNI_IFNAME=eth0',
            `CNI_PATH=rel:./rel:${host.binDir}:/usr/lib/cni`,
            join(host.binDir, plugin),
          ],
          { input: s.conf, allowFail: true },
        );
      const add = await inCwd('ADD');
      expect(add.code, add.stdout).toBe(0);
      expect(s.ipFiles()).toHaveLength(1);
      expect((await inCwd('DEL')).code).toBe(0);
      expect(existsSync(mark)).toBe(false);
      expect([s.stateFiles(), s.ipFiles()]).toEqual([[], []]);
    });

    it('DEL carrying CNI_ARGS the delegate refuses still releases the address, the veth and the state', async () => {
      const s = scenario(SUBNET_ENV);
      const ns = await container();
      ok(await call('ADD', s.conf, 'args3', ns, 'IgnoreUnknown=1;K8S_POD_NAME=p'));
      expect(s.ipFiles()).toHaveLength(1);
      expect(await hostVeths(s.bridge)).toHaveLength(1);
      ok(await call('DEL', s.conf, 'args3', ns, 'K8S_POD_NAME=p'));
      expect(s.stateFiles()).toEqual([]);
      expect(s.ipFiles()).toEqual([]);
      expect(await links(ns)).toEqual([]);
      expect(await hostVeths(s.bridge)).toEqual([]);
      // and again: DEL stays idempotent
      ok(await call('DEL', s.conf, 'args3', ns, 'K8S_POD_NAME=p'));
    });
  },
);
