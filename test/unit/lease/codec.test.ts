import { describe, expect, it } from 'vitest';
import { decodeLeaseAttrs, encodeLeaseAttrs } from '../../../src/lease/codec.js';
import type { LeaseAttrs } from '../../../src/lease/lease.js';
import { hasCode } from '../../../src/errors.js';

/** Values exactly as flannel writes them (Go json.Marshal of lease.LeaseAttrs). */
const golden: Array<[string, string, LeaseAttrs]> = [
  [
    'vxlan (flannel docs, reservations.md)',
    '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
    {
      publicIp: '192.168.64.3',
      publicIpv6: null,
      backendType: 'vxlan',
      backendData: { VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' },
    },
  ],
  [
    'host-gw: no BackendData',
    '{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"host-gw"}',
    { publicIp: '198.18.0.2', publicIpv6: null, backendType: 'host-gw' },
  ],
  [
    'udp: no BackendType at all',
    '{"PublicIP":"198.18.0.3","PublicIPv6":null}',
    { publicIp: '198.18.0.3', publicIpv6: null, backendType: '' },
  ],
  [
    'dual-stack vxlan',
    '{"PublicIP":"198.18.0.4","PublicIPv6":"fd18::4","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01"},"BackendV6Data":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:02"}}',
    {
      publicIp: '198.18.0.4',
      publicIpv6: 'fd18::4',
      backendType: 'vxlan',
      backendData: { VNI: 1, VtepMAC: 'aa:bb:cc:dd:ee:01' },
      backendV6Data: { VNI: 1, VtepMAC: 'aa:bb:cc:dd:ee:02' },
    },
  ],
  [
    'IPv6-only host: PublicIP 0.0.0.0',
    '{"PublicIP":"0.0.0.0","PublicIPv6":"fd18::5","BackendType":"host-gw"}',
    { publicIp: '0.0.0.0', publicIpv6: 'fd18::5', backendType: 'host-gw' },
  ],
];

describe('lease JSON codec (flannel golden strings)', () => {
  it.each(golden)('%s: flannel → weft', (_name, json, attrs) => {
    expect(decodeLeaseAttrs(json)).toEqual(attrs);
  });
  it.each(golden)('%s: weft → flannel byte for byte', (_name, json, attrs) => {
    expect(encodeLeaseAttrs(attrs)).toBe(json);
  });

  it('escapes like Go (<, >, & as \\u003c…)', () => {
    const s = encodeLeaseAttrs({
      publicIp: '1.2.3.4',
      publicIpv6: null,
      backendType: 'x<y>&z',
    });
    expect(s).toBe(
      '{"PublicIP":"1.2.3.4","PublicIPv6":null,"BackendType":"x\\u003cy\\u003e\\u0026z"}',
    );
    expect(decodeLeaseAttrs(s).backendType).toBe('x<y>&z');
  });

  it('reads field names case-insensitively, ignores unknown fields, canonicalises addresses', () => {
    expect(
      decodeLeaseAttrs(
        '{"publicip":"10.0.0.1","PUBLICIPV6":"FD18:0::1","backendtype":"vxlan","Extra":1,"backenddata":{"VNI":7}}',
      ),
    ).toEqual({
      publicIp: '10.0.0.1',
      publicIpv6: 'fd18::1',
      backendType: 'vxlan',
      backendData: { VNI: 7 },
    });
    expect(decodeLeaseAttrs('{}')).toEqual({
      publicIp: '0.0.0.0',
      publicIpv6: null,
      backendType: '',
    });
  });

  it.each([
    ['not JSON', '{"PublicIP":', /not JSON/],
    ['an array', '[1]', /not a JSON object/],
    ['null', 'null', /not a JSON object/],
    ['a bad PublicIP', '{"PublicIP":"10.0.0.999"}', /PublicIP "10.0.0.999"/],
    ['a numeric PublicIP', '{"PublicIP":167772161}', /PublicIP 167772161/],
    ['a bad PublicIPv6', '{"PublicIP":"10.0.0.1","PublicIPv6":"zz::"}', /PublicIPv6 "zz::"/],
    ['a non-string BackendType', '{"PublicIP":"10.0.0.1","BackendType":5}', /BackendType 5/],
  ])('rejects %s with E_LEASE_INVALID', (_name, json, msg) => {
    let caught: unknown;
    try {
      decodeLeaseAttrs(json);
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'E_LEASE_INVALID')).toBe(true);
    expect((caught as Error).message).toMatch(msg);
  });

  it('refuses to write an invalid PublicIP', () => {
    expect(() => encodeLeaseAttrs({ publicIp: 'x', publicIpv6: null, backendType: '' })).toThrow(
      /PublicIP "x"/,
    );
  });
});
