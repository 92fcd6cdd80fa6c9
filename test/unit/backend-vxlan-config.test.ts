import { describe, expect, it } from 'vitest';
import { parseVxlanConfig } from '../../src/backend-vxlan/config.js';
import { parseVxlanBackendData } from '../../src/backend-vxlan/backend-data.js';
import { deriveVtepMac } from '../../src/backend-vxlan/mac.js';
import {
  checksumWorkaroundWanted,
  kernelHasChecksumBug,
} from '../../src/backend-vxlan/checksum.js';

describe('parseVxlanConfig', () => {
  it("fills in flannel's defaults", () => {
    expect(parseVxlanConfig({ Type: 'vxlan' })).toEqual({
      vni: 1,
      port: 8472,
      gbp: false,
      learning: false,
      directRouting: false,
      mtu: null,
      name: 'weft.1',
      name6: 'weft-v6.1',
      checksumWorkaround: 'auto',
    });
  });

  it('reads keys case-insensitively; Port 0 means 8472', () => {
    const c = parseVxlanConfig({
      type: 'vxlan',
      vni: 42,
      PORT: 0,
      directrouting: true,
      Mtu: 9000,
      GBP: true,
    });
    expect(c).toMatchObject({
      vni: 42,
      port: 8472,
      directRouting: true,
      mtu: 9000,
      gbp: true,
      name: 'weft.42',
    });
    expect(parseVxlanConfig({ Port: 4789 }).port).toBe(4789);
  });

  it.each([
    [{ VNI: 0 }, /Backend\.VNI: 0 is invalid: must be an integer from 1 to 16777215/],
    [{ VNI: '1' }, /Backend\.VNI: "1" is invalid/],
    [{ Port: 70000 }, /Backend\.Port: 70000 is invalid/],
    [{ DirectRouting: 'yes' }, /Backend\.DirectRouting: "yes" is invalid: must be true or false/],
    [{ MTU: 100 }, /Backend\.MTU: 100 is invalid/],
    [{ Name: 'way-too-long-device-name' }, /Backend\.Name/],
    [{ ChecksumWorkaround: 'sometimes' }, /Backend\.ChecksumWorkaround/],
  ])('rejects %j naming the key and the rule', (raw, msg) => {
    expect(() => parseVxlanConfig(raw)).toThrow(
      expect.objectContaining({ code: 'E_CONFIG_INVALID', message: expect.stringMatching(msg) }),
    );
  });

  it('warns about unknown keys, ignores the Windows-only MacPrefix', () => {
    const warned: unknown[] = [];
    parseVxlanConfig({ Type: 'vxlan', MacPrefix: '0E-2A', Bogus: 1 }, (_m, f) => warned.push(f));
    expect(warned).toEqual([{ key: 'Bogus' }]);
  });
});

describe('parseVxlanBackendData', () => {
  it('accepts flannel JSON and canonicalises the MAC', () => {
    expect(parseVxlanBackendData({ VNI: 1, VtepMAC: 'C6:D2:32:6F:8F:44' })).toEqual({
      ok: true,
      value: { vni: 1, vtepMac: 'c6:d2:32:6f:8f:44' },
    });
  });
  it('reads a lease without VNI (flannel before v0.11 writes VtepMAC alone) as VNI unknown', () => {
    expect(parseVxlanBackendData({ VtepMAC: 'c6:d2:32:6f:8f:44' })).toEqual({
      ok: true,
      value: { vni: null, vtepMac: 'c6:d2:32:6f:8f:44' },
    });
  });
  it('matches field names ignoring case, like flannel (Go encoding/json); a field in two spellings is refused', () => {
    expect(parseVxlanBackendData({ vni: 7, vtepmac: '0e:00:00:00:00:01' })).toEqual({
      ok: true,
      value: { vni: 7, vtepMac: '0e:00:00:00:00:01' },
    });
    // Go takes the spelling written last, which a parsed object does not reliably tell ({"VNI":1,
    // "vni":2,"VNI":3} parses as VNI 3 before vni 2): refused, naming both, so the lease shows as
    // refused instead of weft and flannel nodes programming different VNIs or MACs
    expect(parseVxlanBackendData({ vni: 9, VNI: 7, VtepMAC: '0e:00:00:00:00:01' })).toEqual({
      ok: false,
      reason: 'BackendData names VNI twice ("vni", "VNI"): write it once',
    });
    expect(
      parseVxlanBackendData({ VNI: 1, VtepMAC: '0e:00:00:00:00:01', vtepmac: '0e:00:00:00:00:02' }),
    ).toEqual({
      ok: false,
      reason: 'BackendData names VtepMAC twice ("VtepMAC", "vtepmac"): write it once',
    });
    // a null leaves the field unset, as in Go: the other spelling counts
    expect(
      parseVxlanBackendData({ VNI: null, vni: 3, VtepMAC: '0e:00:00:00:00:01', vtepmac: null }),
    ).toEqual({ ok: true, value: { vni: 3, vtepMac: '0e:00:00:00:00:01' } });
    expect(parseVxlanBackendData({ Vni: 'x', VtepMac: '0e:00:00:00:00:01' })).toMatchObject({
      ok: false,
    });
  });
  it.each([
    [null, /not an object/],
    [[1], /not an object/],
    [{ VNI: 1 }, /VtepMAC is missing/],
    [{ VNI: 1, VtepMAC: 'zz' }, /not a MAC address/],
    [{ VNI: 1, VtepMAC: '01:00:5e:00:00:01' }, /not a unicast MAC/],
    [{ VNI: 1, VtepMAC: '00:00:00:00:00:00' }, /not a unicast MAC/],
    [{ VNI: -1, VtepMAC: 'c6:d2:32:6f:8f:44' }, /VNI/],
    [{ VNI: 1, VtepMAC: '0f:00:00:00:00:01' }, /not a unicast MAC/],
    [{ VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:4g' }, /not a MAC address/],
    [{ VNI: 1, VtepMAC: 'c6:d2:32:6f:8f-44' }, /not a MAC address/],
    [{ VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:4\u0101' }, /not a MAC address/],
    [{ VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:4\u0130' }, /not a MAC address/],
  ])('rejects %j', (data, reason) => {
    const r = parseVxlanBackendData(data);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toMatch(reason);
  });
  it('takes canonical MACs as they are and every other spelling through the parser, alike', () => {
    // The canonical form is checked without parsing; the answer must equal the parser's.
    for (const first of [0x00, 0x01, 0x0e, 0x0f, 0xc6, 0xff]) {
      for (const rest of ['00:00:00:00:00', 'd2:32:6f:8f:44', 'ff:ff:ff:ff:ff']) {
        const mac = `${first.toString(16).padStart(2, '0')}:${rest}`;
        const unicast = (first & 1) === 0 && !(first === 0 && rest === '00:00:00:00:00');
        for (const text of [mac, mac.toUpperCase(), mac.replaceAll(':', '-')]) {
          const r = parseVxlanBackendData({ VNI: 1, VtepMAC: text });
          expect(r, text).toEqual(
            unicast
              ? { ok: true, value: { vni: 1, vtepMac: mac } }
              : { ok: false, reason: `BackendData.VtepMAC ${mac} is not a unicast MAC address` },
          );
        }
      }
    }
  });
});

describe('deriveVtepMac', () => {
  it('is stable, locally administered unicast, and differs per host, VNI and family', () => {
    const id = '0123456789abcdef0123456789abcdef';
    const a = deriveVtepMac(id, '198.18.0.1', 1, 4);
    expect(deriveVtepMac(id, '198.18.0.1', 1, 4)).toBe(a);
    expect(a).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(parseInt(a.slice(0, 2), 16) & 0x01).toBe(0); // unicast: the I/G bit clear
    expect(parseInt(a.slice(0, 2), 16) & 0x02).toBe(2);
    const others = [
      deriveVtepMac(id, '198.18.0.2', 1, 4),
      deriveVtepMac(id, '198.18.0.1', 2, 4),
      deriveVtepMac(id, '198.18.0.1', 1, 6),
      deriveVtepMac('fedcba9876543210fedcba9876543210', '198.18.0.1', 1, 4),
    ];
    expect(new Set([a, ...others]).size).toBe(5);
  });
});

describe('checksum workaround', () => {
  it.each([
    ['4.19.0-21-amd64', true],
    ['5.4.0', true],
    ['5.6.19', true],
    ['5.7.0', false],
    ['5.10.0-28-amd64', false],
    ['6.18.44-fc', false],
    ['garbage', false],
  ])('kernel %s affected: %s', (rel, affected) => {
    expect(kernelHasChecksumBug(rel)).toBe(affected);
    expect(checksumWorkaroundWanted('auto', rel)).toBe(affected);
  });
  it('on/off override the kernel check', () => {
    expect(checksumWorkaroundWanted('on', '6.1.0')).toBe(true);
    expect(checksumWorkaroundWanted('off', '4.19.0')).toBe(false);
  });
});
