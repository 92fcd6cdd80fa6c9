/**
 * uplinkRecreated / uplinkCameUp (backend/lifecycle.ts): the uplink deleted and created again under its
 * name moves the backends onto the new ifindex, and the new interface coming up counts as the uplink
 * coming up; its address coming back (after a re-create, or a flush) asks for a reconcile again. Pure
 * event logic; the kernel side is test/e2e/weftd-uplink-recreate.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { Uplink } from '../../src/backend/backend.js';
import { uplinkCameUp, uplinkRecreated } from '../../src/backend/lifecycle.js';
import { nullLogger } from '../../src/log/logger.js';
import type { LinkEvent } from '../../src/netlink/index.js';

const link = (kind: 'added' | 'changed', index: number, name: string, up: boolean): LinkEvent => ({
  kind,
  link: { index, name, kind: 'veth', mtu: 1500, mac: '02:00:00:00:00:01', up },
});

const addr = (
  added: boolean,
  index: number,
  cidr: string,
  flags: string[] = ['permanent'],
): LinkEvent => ({
  kind: 'address',
  added,
  link: { index, name: 'eth0', kind: 'veth', mtu: 1500, mac: '02:00:00:00:00:01', up: true },
  addr: { index, cidr, flags },
});

const uplink = (): Uplink => ({
  name: 'eth0',
  index: 2,
  mtu: 1500,
  ifaceAddr: '198.18.0.1',
  ifaceAddr6: null,
  publicIp: null,
  publicIpv6: null,
});

describe('uplinkRecreated', () => {
  it('moves uplink.index to a new interface with the uplink name, once', () => {
    const u = uplink();
    const moved = uplinkRecreated(u, nullLogger);
    expect(moved({ kind: 'removed', index: 2, name: 'eth0' })).toBe(false);
    expect(moved(link('changed', 2, 'eth0', true))).toBe(false); // the same interface
    expect(moved(link('added', 7, 'eth1', true))).toBe(false); // another name
    expect(moved({ kind: 'resync' })).toBe(false);
    expect(u.index).toBe(2);
    expect(moved(link('added', 9, 'eth0', false))).toBe(true);
    expect(u.index).toBe(9);
    expect(moved(link('changed', 9, 'eth0', true))).toBe(false);
  });

  it('the re-created uplink coming up counts as the uplink coming up', () => {
    const u = uplink();
    const moved = uplinkRecreated(u, nullLogger);
    const cameUp = uplinkCameUp(u);
    const both = (e: LinkEvent): boolean => moved(e) || cameUp(e);
    expect(both(link('changed', 2, 'eth0', true))).toBe(false); // up all along
    expect(both(link('added', 9, 'eth0', false))).toBe(true); // moved: reconcile
    expect(both(link('changed', 9, 'eth0', false))).toBe(false);
    expect(both(link('changed', 9, 'eth0', true))).toBe(true); // and again once it is up
    // the old interface renamed away (a bond rebuilt): no longer ours
    expect(both(link('changed', 2, 'eth0-old', false))).toBe(false);
    expect(u.index).toBe(9);
  });

  it('its own address coming back after the re-create asks for a reconcile, once', () => {
    const u = { ...uplink(), ifaceAddr6: 'fd18::1' };
    const moved = uplinkRecreated(u, nullLogger);
    // refreshes (router advertisements) and other addresses of the running uplink: nothing to do
    expect(moved(addr(true, 2, '198.18.0.1/24'))).toBe(false);
    expect(moved(addr(true, 2, 'fd18::1/64'))).toBe(false);
    expect(moved(addr(true, 2, 'fd18::2:3/64', ['temporary']))).toBe(false);
    expect(moved(link('added', 9, 'eth0', false))).toBe(true);
    expect(moved(link('changed', 9, 'eth0', true))).toBe(false);
    expect(moved(addr(true, 9, '198.18.0.11/24'))).toBe(false); // not ours (watchUplinkAddress's case)
    expect(moved(addr(true, 9, '198.18.0.1/24'))).toBe(true);
    expect(moved(addr(true, 9, '198.18.0.1/24'))).toBe(false); // refreshed
    expect(moved(addr(true, 9, 'fd18::1/64', ['tentative']))).toBe(false); // DAD still running
    expect(moved(addr(true, 9, 'fd18::1/64', ['permanent']))).toBe(true);
  });

  it('an address flushed and added again on the same uplink asks for a reconcile', () => {
    const moved = uplinkRecreated(uplink(), nullLogger);
    expect(moved(addr(false, 2, '198.18.0.1/24'))).toBe(false);
    const other = addr(true, 3, '198.18.0.1/24');
    if (other.kind === 'address') {
      expect(moved({ ...other, link: { ...other.link, name: 'eth1' } })).toBe(false); // another link
    }
    expect(moved(addr(true, 2, '198.18.0.1/24'))).toBe(true);
  });
});
