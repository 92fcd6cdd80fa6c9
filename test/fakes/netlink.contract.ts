/**
 * The netlink façade contract: the behaviours weft's backends rely on (VXLAN device lifecycle, addresses,
 * neighbours, FDB, routes, batches, typed errno errors), run against FakeNetlink
 * (test/unit/netlink-fake-contract.test.ts) and the real façade in a test netns
 * (test/integration/netlink-contract.test.ts). Everything here must hold for both; where the fake
 * differed from the kernel, the fake was fixed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NetlinkOps, VxlanLinkSpec } from '../../src/netlink/index.js';

export interface NetlinkHarness {
  readonly ops: NetlinkOps;
  /** The underlay link and its IPv4 address (198.18.0.1 on both harnesses). */
  readonly underlay: { readonly index: number; readonly local: string };
  close(): Promise<void>;
}

export function netlinkContract(label: string, setup: () => Promise<NetlinkHarness>): void {
  describe(`netlink façade contract: ${label}`, () => {
    let h: NetlinkHarness;
    let vni = 100;
    beforeAll(async () => {
      h = await setup();
    });
    afterAll(async () => {
      await h?.close();
    });
    const spec = (over: Partial<VxlanLinkSpec> = {}): VxlanLinkSpec => ({
      name: `wc.${vni}`,
      vni: vni++,
      local: h.underlay.local,
      underlayIndex: h.underlay.index,
      port: 8472,
      learning: false,
      gbp: false,
      mtu: 1450,
      mac: '0e:00:00:00:00:07',
      ...over,
    });
    const device = async (): Promise<number> => {
      const { link } = await h.ops.ensureVxlanLink(spec());
      await h.ops.setLinkUp(link.index);
      return link.index;
    };

    it('creates a VXLAN device down, then reuses, corrects and re-creates it', async () => {
      const { ops } = h;
      const s = spec();
      const a = await ops.ensureVxlanLink(s);
      expect(a.action).toBe('created');
      expect(a.link).toMatchObject({
        name: s.name,
        kind: 'vxlan',
        mtu: 1450,
        mac: s.mac,
        up: false,
      });
      expect(a.link.vxlan).toMatchObject({
        vni: s.vni,
        local: s.local,
        underlayIndex: s.underlayIndex,
        port: 8472,
        learning: false,
        gbp: false,
        group: null,
      });
      expect((await ops.ensureVxlanLink(s)).action).toBe('reused');
      const b = await ops.ensureVxlanLink({ ...s, mtu: 1400, mac: '0e:00:00:00:00:70' });
      expect(b).toMatchObject({ action: 'updated', link: { index: a.link.index, mtu: 1400 } });
      expect((await ops.getLink(s.name))?.mac).toBe('0e:00:00:00:00:70');
      const c = await ops.ensureVxlanLink({ ...s, port: 4789 });
      expect(c.action).toBe('recreated');
      expect(c.link.vxlan?.port).toBe(4789);
      expect(await ops.getLinkByIndex(c.link.index)).toMatchObject({ name: s.name });
      expect((await ops.listLinks()).map((l) => l.name)).toContain(s.name);
      await ops.setLinkUp(c.link.index);
      await ops.setLinkMtu(c.link.index, 1300);
      await ops.setLinkMac(c.link.index, '0e:00:00:00:00:71');
      expect(await ops.getLink(s.name)).toMatchObject({
        up: true,
        mtu: 1300,
        mac: '0e:00:00:00:00:71',
      });
      await ops.deleteLink(c.link.index);
      expect(await ops.getLink(s.name)).toBeNull();
      expect(await ops.getLinkByIndex(c.link.index)).toBeNull();
      await expect(ops.deleteLink(c.link.index)).rejects.toMatchObject({
        code: 'E_NETLINK',
        errno: 'ENODEV',
        op: 'deleteLink',
      });
    });

    it('refuses a second device with the same VNI, port and underlay (EEXIST, typed)', async () => {
      const s = spec();
      const { link } = await h.ops.ensureVxlanLink(s);
      await expect(h.ops.ensureVxlanLink({ ...s, name: `${s.name}d` })).rejects.toMatchObject({
        code: 'E_NETLINK',
        errno: 'EEXIST',
        op: 'createVxlanLink',
        object: `${s.name}d`,
      });
      await h.ops.deleteLink(link.index);
    });

    it('keeps one address per family in scope: ensureAddr removes strays inside strayWithin', async () => {
      const { ops } = h;
      const dev = await device();
      expect(await ops.ensureAddr(dev, '10.5.1.0/32', ['10.5.0.0/16'])).toEqual([]);
      expect(await ops.ensureAddr(dev, '10.5.1.0/32', ['10.5.0.0/16'])).toEqual([]);
      await ops.ensureAddr(dev, '10.77.0.1/32');
      expect(await ops.ensureAddr(dev, '10.5.9.0/32', ['10.5.0.0/16'])).toEqual(['10.5.1.0/32']);
      expect((await ops.listAddrs(dev, 4)).map((a) => a.cidr).sort()).toEqual([
        '10.5.9.0/32',
        '10.77.0.1/32',
      ]);
      await ops.ensureAddr(dev, 'fd05:0:0:9::/128', ['fd05::/48']);
      expect((await ops.listAddrs(dev, 6)).map((a) => a.cidr)).toContain('fd05:0:0:9::/128');
      expect((await ops.listAddrs(dev, 4)).map((a) => a.cidr)).not.toContain('fd05:0:0:9::/128');
      await ops.deleteAddr(dev, '10.77.0.1/32');
      expect((await ops.listAddrs(dev, 4)).map((a) => a.cidr)).toEqual(['10.5.9.0/32']);
      await expect(ops.deleteAddr(dev, '10.77.0.1/32')).rejects.toMatchObject({
        errno: 'EADDRNOTAVAIL',
      });
      await ops.deleteLink(dev);
    });

    it('replaces neighbours, FDB entries and routes in place, lists them, and deletes them', async () => {
      const { ops } = h;
      const dev = await device();
      await ops.neighReplace({ ifindex: dev, dst: '10.5.2.0', mac: '0e:00:00:00:00:02' });
      await ops.neighReplace({ ifindex: dev, dst: '10.5.2.0', mac: '0e:00:00:00:00:22' });
      await ops.neighReplace({ ifindex: dev, dst: 'fd05:0:0:2::', mac: '0e:00:00:00:00:22' });
      await ops.fdbReplace({ ifindex: dev, mac: '0e:00:00:00:00:22', dst: '198.18.0.2' });
      await ops.routeReplace({ dst: '10.5.2.0/24', gateway: '10.5.2.0', oif: dev, onlink: true });
      await ops.routeReplace({ dst: '10.5.2.0/24', gateway: '10.5.2.1', oif: dev, onlink: true });
      await ops.routeReplace({ dst: '10.5.3.0/24', oif: dev });
      await ops.routeReplace({
        dst: 'fd05:0:0:2::/64',
        gateway: 'fd05:0:0:2::',
        oif: dev,
        onlink: true,
      });

      expect(await ops.neighList(4, dev)).toEqual([
        { family: 4, ifindex: dev, dst: '10.5.2.0', mac: '0e:00:00:00:00:22', permanent: true },
      ]);
      expect((await ops.neighList(6, dev)).filter((n) => n.permanent)).toEqual([
        { family: 6, ifindex: dev, dst: 'fd05:0:0:2::', mac: '0e:00:00:00:00:22', permanent: true },
      ]);
      expect((await ops.fdbList(dev)).filter((f) => f.dst)).toEqual([
        { ifindex: dev, mac: '0e:00:00:00:00:22', dst: '198.18.0.2', permanent: true },
      ]);
      const routes = await ops.routeList(4, { oif: dev });
      expect(routes.sort((a, b) => a.dst.localeCompare(b.dst))).toEqual([
        {
          family: 4,
          dst: '10.5.2.0/24',
          gateway: '10.5.2.1',
          oif: dev,
          onlink: true,
          table: 254,
          protocol: 'STATIC',
          type: 'UNICAST',
        },
        expect.objectContaining({ dst: '10.5.3.0/24', gateway: null, oif: dev, onlink: false }),
      ]);
      expect((await ops.routeList(6, { oif: dev })).filter((r) => r.protocol === 'STATIC')).toEqual(
        [expect.objectContaining({ family: 6, dst: 'fd05:0:0:2::/64', gateway: 'fd05:0:0:2::' })],
      );

      await ops.routeReplace({ dst: '10.5.5.0/24', oif: dev, table: 100 });
      expect((await ops.routeList(4, { oif: dev, table: 100 })).map((r) => r.dst)).toEqual([
        '10.5.5.0/24',
      ]);
      await ops.routeDelete({ dst: '10.5.5.0/24', oif: dev, table: 100 });
      await ops.routeDelete({ dst: '10.5.2.0/24', oif: dev });
      await ops.neighDelete({ ifindex: dev, dst: '10.5.2.0' });
      await ops.fdbDelete({ ifindex: dev, mac: '0e:00:00:00:00:22', dst: '198.18.0.2' });
      expect((await ops.routeList(4, { oif: dev })).map((r) => r.dst)).toEqual(['10.5.3.0/24']);
      expect(await ops.neighList(4, dev)).toEqual([]);
      expect((await ops.fdbList(dev)).filter((f) => f.dst)).toEqual([]);
      // Deleting what is absent: typed "absent" errnos (routes ESRCH, neighbours and FDB ENOENT).
      await expect(ops.routeDelete({ dst: '10.5.2.0/24', oif: dev })).rejects.toMatchObject({
        code: 'E_NETLINK',
        errno: 'ESRCH',
        op: 'routeDelete',
      });
      await expect(ops.neighDelete({ ifindex: dev, dst: '10.5.2.0' })).rejects.toMatchObject({
        errno: 'ENOENT',
        op: 'neighDelete',
      });
      await expect(
        ops.fdbDelete({ ifindex: dev, mac: '0e:00:00:00:00:22', dst: '198.18.0.2' }),
      ).rejects.toMatchObject({ errno: 'ENOENT', op: 'fdbDelete' });
      await ops.deleteLink(dev);
    });

    it('keeps one FDB remote per MAC: a replace with another dst moves the entry', async () => {
      const { ops } = h;
      const dev = await device();
      await ops.fdbReplace({ ifindex: dev, mac: '0e:00:00:00:00:33', dst: '198.18.0.3' });
      await ops.fdbReplace({ ifindex: dev, mac: '0e:00:00:00:00:33', dst: '198.18.0.4' });
      expect((await ops.fdbList(dev)).filter((f) => f.dst)).toEqual([
        { ifindex: dev, mac: '0e:00:00:00:00:33', dst: '198.18.0.4', permanent: true },
      ]);
      // Deleting the old (MAC, dst) pair succeeds and leaves the moved entry alone.
      await ops.fdbDelete({ ifindex: dev, mac: '0e:00:00:00:00:33', dst: '198.18.0.3' });
      expect((await ops.fdbList(dev)).filter((f) => f.dst)).toEqual([
        { ifindex: dev, mac: '0e:00:00:00:00:33', dst: '198.18.0.4', permanent: true },
      ]);
      await ops.deleteLink(dev);
    });

    it('drops a device’s routes, neighbours and FDB entries with the device', async () => {
      const { ops } = h;
      const dev = await device();
      await ops.neighReplace({ ifindex: dev, dst: '10.5.4.0', mac: '0e:00:00:00:00:04' });
      await ops.fdbReplace({ ifindex: dev, mac: '0e:00:00:00:00:04', dst: '198.18.0.4' });
      await ops.routeReplace({ dst: '10.5.4.0/24', gateway: '10.5.4.0', oif: dev, onlink: true });
      await ops.deleteLink(dev);
      expect(await ops.routeList(4, { oif: dev })).toEqual([]);
      expect(await ops.neighList(4, dev)).toEqual([]);
      expect(await ops.fdbList(dev)).toEqual([]);
    });

    it('applies a batch with one typed result per mutation, in order, and never rejects', async () => {
      const { ops } = h;
      const eth0 = h.underlay.index;
      const results = await ops.applyBatch([
        { op: 'routeReplace', route: { dst: '10.44.1.0/24', oif: eth0 } },
        { op: 'routeReplace', route: { dst: '10.44.2.0/24', oif: 99_999 } },
        { op: 'routeDelete', route: { dst: '10.44.3.0/24', oif: eth0 } },
        {
          op: 'neighReplace',
          neigh: { ifindex: eth0, dst: '198.18.0.44', mac: '0e:44:44:44:44:44' },
        },
        {
          op: 'neighReplace',
          neigh: { ifindex: 99_999, dst: '198.18.0.46', mac: '0e:44:44:44:44:46' },
        },
        { op: 'neighDelete', neigh: { ifindex: eth0, dst: '198.18.0.45' } },
        { op: 'neighDelete', neigh: { ifindex: eth0, dst: '198.18.0.44' } },
        { op: 'routeDelete', route: { dst: '10.44.1.0/24', oif: eth0 } },
        { op: 'routeReplace', route: { dst: 'not-a-cidr', oif: eth0 } },
      ]);
      expect(results.map((r) => (r ? `${r.code} ${r.errno} ${r.op}` : null))).toEqual([
        null,
        'E_NETLINK ENODEV routeReplace',
        'E_NETLINK ESRCH routeDelete',
        null,
        'E_NETLINK ENODEV neighReplace',
        'E_NETLINK ENOENT neighDelete',
        null,
        null,
        'E_NETLINK EINVAL routeReplace',
      ]);
      expect((await ops.routeList(4, { oif: eth0 })).map((r) => r.dst)).not.toContain(
        '10.44.1.0/24',
      );
    });
  });
}
