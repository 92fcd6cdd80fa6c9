/** Result conversion between spec versions (docs/cni-contract.md A6). */
import { describe, expect, it } from 'vitest';
import { CniError } from '../../../src/cni/errors.js';
import { parseResult, renderResult } from '../../../src/cni/result.js';

const v040 = {
  cniVersion: '0.4.0',
  interfaces: [
    { name: 'cni0', mac: '02:aa:bb:cc:dd:ee' },
    { name: 'veth1', mac: '02:aa:bb:cc:dd:01' },
    { name: 'eth0', mac: '02:aa:bb:cc:dd:02', sandbox: '/run/netns/c1' },
  ],
  ips: [
    { version: '4', interface: 2, address: '10.5.72.2/24', gateway: '10.5.72.1' },
    { version: '6', interface: 2, address: 'fd00:5:0:72::2/64', gateway: 'fd00:5:0:72::1' },
  ],
  routes: [{ dst: '10.5.0.0/16', gw: '10.5.72.1' }],
  dns: {},
};

const v110 = {
  cniVersion: '1.1.0',
  interfaces: [
    {
      name: 'eth0',
      mac: '02:aa:bb:cc:dd:02',
      sandbox: '/run/netns/c1',
      mtu: 1450,
      socketPath: '/s',
      pciID: '0000:00:01.0',
    },
  ],
  ips: [{ interface: 0, address: '10.5.72.2/24', gateway: '10.5.72.1' }],
  routes: [
    {
      dst: '10.5.0.0/16',
      gw: '10.5.72.1',
      mtu: 1400,
      advmss: 1360,
      priority: 5,
      table: 100,
      scope: 0,
    },
  ],
  dns: { nameservers: ['10.5.0.10'], domain: 'c.local', search: ['c.local'], options: ['ndots:5'] },
};

describe('result conversion', () => {
  it('0.4.0 → 1.0.0 drops ips[].version and keeps the MAC', () => {
    const r = renderResult(parseResult(v040), '1.0.0');
    expect(r['cniVersion']).toBe('1.0.0');
    expect(r['ips']).toEqual([
      { interface: 2, address: '10.5.72.2/24', gateway: '10.5.72.1' },
      { interface: 2, address: 'fd00:5:0:72::2/64', gateway: 'fd00:5:0:72::1' },
    ]);
    expect(r['interfaces']).toEqual(v040.interfaces);
  });

  it('1.0.0 → 0.3.0/0.3.1/0.4.0 adds ips[].version per family', () => {
    const one = renderResult(parseResult(v040), '1.0.0');
    for (const v of ['0.3.0', '0.3.1', '0.4.0'] as const) {
      const r = renderResult(parseResult(one), v);
      expect(r).toEqual({ ...v040, cniVersion: v });
    }
  });

  it('1.1.0 keeps interface mtu/socketPath/pciID and route mtu/advmss/priority/table/scope', () => {
    expect(renderResult(parseResult(v110), '1.1.0')).toEqual(v110);
  });

  it('below 1.1.0 the 1.1-only fields are dropped', () => {
    const r = renderResult(parseResult(v110), '1.0.0');
    expect(r['interfaces']).toEqual([
      { name: 'eth0', mac: '02:aa:bb:cc:dd:02', sandbox: '/run/netns/c1' },
    ]);
    expect(r['routes']).toEqual([{ dst: '10.5.0.0/16', gw: '10.5.72.1' }]);
    expect(r['dns']).toEqual(v110.dns);
    const old = renderResult(parseResult(v110), '0.3.1');
    expect(old['ips']).toEqual([
      { version: '4', interface: 0, address: '10.5.72.2/24', gateway: '10.5.72.1' },
    ]);
  });

  it.each([
    [{ ip4: { ip: '10.0.0.2/24' } }, 'ip4/ip6'],
    [{ interfaces: [{ mac: '02:00:00:00:00:01' }] }, 'interfaces[0].name is missing'],
    [{ interfaces: [{ name: 'e', mac: 'zz:zz' }] }, 'is not a MAC'],
    [{ ips: [{ address: '10.0.0.2' }] }, 'is not a CIDR'],
    [{ ips: [{ address: '10.0.0.2/24', interface: 3 }] }, 'out of range'],
    [{ routes: [{ dst: '10.0.0.0/8', gw: 'x' }] }, 'is not an IP'],
    ['"str"', 'not a JSON object'],
  ])('rejects malformed delegate output %#', (raw, msg) => {
    expect(() => parseResult(raw)).toThrow(CniError);
    expect(() => parseResult(raw)).toThrow(msg);
  });
});
