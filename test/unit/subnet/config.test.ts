import { describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../../src/subnet/config.js';
import { hasCode } from '../../../src/errors.js';
import { warnRecorder } from '../../helpers/logger.js';

describe('network config: defaults (docs/flannel-compat.md §8)', () => {
  it.each([
    [
      '/16 → SubnetLen 24, min = second subnet, max = last',
      { Network: '10.5.0.0/16' },
      { subnetLen: 24, subnetMin: '10.5.1.0', subnetMax: '10.5.255.0' },
    ],
    [
      '/22 → 24',
      { Network: '10.5.0.0/22' },
      { subnetLen: 24, subnetMin: '10.5.1.0', subnetMax: '10.5.3.0' },
    ],
    [
      '/23 → 25 (prefix + 2)',
      { Network: '10.5.0.0/23' },
      { subnetLen: 25, subnetMin: '10.5.0.128', subnetMax: '10.5.1.128' },
    ],
    [
      '/28 → 30',
      { Network: '10.5.0.0/28' },
      { subnetLen: 30, subnetMin: '10.5.0.4', subnetMax: '10.5.0.12' },
    ],
    [
      '/8 with SubnetLen 20 and explicit bounds (flannel docs example)',
      { Network: '10.0.0.0/8', SubnetLen: 20, SubnetMin: '10.10.0.0', SubnetMax: '10.99.0.0' },
      { subnetLen: 20, subnetMin: '10.10.0.0', subnetMax: '10.99.0.0' },
    ],
    ['SubnetLen 0 counts as unset', { Network: '10.5.0.0/16', SubnetLen: 0 }, { subnetLen: 24 }],
    ['host bits in Network are cleared', { Network: '10.5.7.9/16' }, { network: '10.5.0.0/16' }],
    [
      'EnableIPv4 defaults to true, EnableIPv6 to false',
      { Network: '10.5.0.0/16' },
      { enableIPv4: true, enableIPv6: false, ipv6Network: null },
    ],
    [
      'field names are case-insensitive',
      { network: '10.5.0.0/16', SUBNETLEN: 26, enableipv4: true },
      { network: '10.5.0.0/16', subnetLen: 26 },
    ],
    [
      'IPv6 /48 → 64, second and last subnet',
      { Network: '10.5.0.0/16', EnableIPv6: true, IPv6Network: 'fc00::/48' },
      { ipv6SubnetLen: 64, ipv6SubnetMin: 'fc00:0:0:1::', ipv6SubnetMax: 'fc00:0:0:ffff::' },
    ],
    [
      'IPv6 /62 → 64',
      { EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/62' },
      { ipv6SubnetLen: 64, network: null, subnetLen: 0 },
    ],
    [
      'IPv6 /63 → 65',
      { EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/63' },
      { ipv6SubnetLen: 65 },
    ],
    [
      'IPv6 /124 → 126',
      { EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/124' },
      { ipv6SubnetLen: 126, ipv6SubnetMin: 'fc00::4', ipv6SubnetMax: 'fc00::c' },
    ],
    [
      'IPv6 explicit length and bounds',
      {
        EnableIPv4: false,
        EnableIPv6: true,
        IPv6Network: 'fc00::/48',
        IPv6SubnetLen: 56,
        IPv6SubnetMin: 'fc00:0:0:100::',
        IPv6SubnetMax: 'fc00:0:0:ff00::',
      },
      { ipv6SubnetLen: 56, ipv6SubnetMin: 'fc00:0:0:100::', ipv6SubnetMax: 'fc00:0:0:ff00::' },
    ],
    [
      // flannel tests SubnetMin/SubnetMax against the zero address (IPv6: ip.IsEmpty), so "0.0.0.0" and
      // "::" mean "not set" — what Go's json.Marshal of flannel's own Config writes for unset bounds
      'zero SubnetMin/SubnetMax mean unset, as in flannel',
      { Network: '10.5.0.0/16', SubnetMin: '0.0.0.0', SubnetMax: '0.0.0.0' },
      { subnetLen: 24, subnetMin: '10.5.1.0', subnetMax: '10.5.255.0' },
    ],
    [
      'zero IPv6SubnetMin/IPv6SubnetMax mean unset, as in flannel',
      {
        EnableIPv4: false,
        EnableIPv6: true,
        IPv6Network: 'fc00::/48',
        IPv6SubnetMin: '::',
        IPv6SubnetMax: '0::0',
      },
      { ipv6SubnetLen: 64, ipv6SubnetMin: 'fc00:0:0:1::', ipv6SubnetMax: 'fc00:0:0:ffff::' },
    ],
    [
      'Backend absent → vxlan (not flannel udp)',
      { Network: '10.5.0.0/16' },
      { backend: { type: 'vxlan', raw: { Type: 'vxlan' } } },
    ],
    [
      'Backend Type lower-cased, keys kept',
      { Network: '10.5.0.0/16', Backend: { Type: 'Host-GW', Foo: 1 } },
      { backend: { type: 'host-gw', raw: { Type: 'Host-GW', Foo: 1 } } },
    ],
    [
      'Backend type key case-insensitive',
      { Network: '10.5.0.0/16', backend: { type: 'udp', Port: 7890 } },
      { backend: { type: 'udp', raw: { type: 'udp', Port: 7890 } } },
    ],
  ])('%s', (_name, input, expected) => {
    expect(parseNetworkConfig(input)).toMatchObject(expected);
    expect(parseNetworkConfig(JSON.stringify(input))).toMatchObject(expected);
  });
});

describe('network config: every rule rejects naming field, value and rule', () => {
  it.each([
    ['not JSON', '{"Network":', /not valid JSON/],
    ['not an object', '[1,2]', /must be a JSON object/],
    ['Network missing', {}, /Network = null .*please define a correct Network parameter/],
    ['Network empty', { Network: '' }, /Network = "" .*please define a correct Network parameter/],
    ['Network not a CIDR', { Network: '10.5.0.0' }, /Network = "10.5.0.0" .*IPv4 CIDR/],
    ['Network a number', { Network: 10 }, /Network = 10 .*must be a string/],
    [
      'SubnetLen > 30',
      { Network: '10.5.0.0/16', SubnetLen: 31 },
      /SubnetLen = 31 .*SubnetLen must be less than \/31/,
    ],
    [
      'SubnetLen < prefix + 2',
      { Network: '10.5.0.0/16', SubnetLen: 17 },
      /SubnetLen = 17 .*at least four subnets/,
    ],
    [
      'SubnetLen not an integer',
      { Network: '10.5.0.0/16', SubnetLen: 24.5 },
      /SubnetLen = 24.5 .*non-negative integer/,
    ],
    [
      'SubnetLen a string',
      { Network: '10.5.0.0/16', SubnetLen: '24' },
      /SubnetLen = "24" .*non-negative integer/,
    ],
    [
      'network too small',
      { Network: '10.5.0.0/29' },
      /Network = "10.5.0.0\/29" .*Minimum useful network prefix is \/28/,
    ],
    [
      'SubnetMin outside',
      { Network: '10.5.0.0/16', SubnetMin: '10.6.0.0' },
      /SubnetMin = "10.6.0.0" .*SubnetMin is not in the range of the Network/,
    ],
    [
      'SubnetMax outside',
      { Network: '10.5.0.0/16', SubnetMax: '10.4.0.0' },
      /SubnetMax = "10.4.0.0" .*SubnetMax is not in the range of the Network/,
    ],
    [
      'SubnetMin unaligned',
      { Network: '10.5.0.0/16', SubnetMin: '10.5.1.1' },
      /SubnetMin = "10.5.1.1" .*SubnetMin is not on a SubnetLen boundary: 10.5.1.1/,
    ],
    [
      'SubnetMax unaligned',
      { Network: '10.5.0.0/16', SubnetMax: '10.5.9.128' },
      /SubnetMax = "10.5.9.128" .*SubnetMax is not on a SubnetLen boundary/,
    ],
    [
      'SubnetMin not an address',
      { Network: '10.5.0.0/16', SubnetMin: 'ten' },
      /SubnetMin = "ten" .*IPv4 address/,
    ],
    [
      'SubnetMin above SubnetMax',
      { Network: '10.5.0.0/16', SubnetMin: '10.5.9.0', SubnetMax: '10.5.8.0' },
      /SubnetMin = "10.5.9.0" .*must not be above SubnetMax/,
    ],
    [
      'EnableIPv4 not a bool',
      { Network: '10.5.0.0/16', EnableIPv4: 'yes' },
      /EnableIPv4 = "yes" .*true or false/,
    ],
    [
      'EnableNFTables not a bool',
      { Network: '10.5.0.0/16', EnableNFTables: 1 },
      /EnableNFTables = 1 .*true or false/,
    ],
    ['no stack at all', { EnableIPv4: false }, /none defined stack/],
    // Ranges no container address can come from (flannel accepts them): refused, naming the range.
    // Before, weft leased multicast / link-local / IPv4-mapped subnets to its hosts.
    [
      'IPv6Network multicast',
      { Network: '10.5.0.0/16', EnableIPv6: true, IPv6Network: 'ff05::/48' },
      /IPv6Network = "ff05::\/48" is invalid: ff05::\/48 overlaps ff00::\/8 \(multicast\): container addresses must be unicast; use a private range such as "fd05::\/48"/,
    ],
    [
      'IPv6Network link-local',
      { Network: '10.5.0.0/16', EnableIPv6: true, IPv6Network: 'fe80::/48' },
      /overlaps fe80::\/10 \(link-local\)/,
    ],
    [
      'IPv6Network IPv4-mapped',
      { Network: '10.5.0.0/16', EnableIPv6: true, IPv6Network: '::ffff:10.0.0.0/104' },
      /IPv6Network = "::ffff:10.0.0.0\/104" .*overlaps ::ffff:0:0\/96 \(IPv4-mapped\)/,
    ],
    [
      'IPv6Network covering link-local',
      { Network: '10.5.0.0/16', EnableIPv6: true, IPv6Network: 'fe00::/7' },
      /overlaps fe80::\/10 \(link-local\)/,
    ],
    [
      'Network multicast',
      { Network: '224.5.0.0/16' },
      /Network = "224.5.0.0\/16" .*overlaps 224.0.0.0\/4 \(multicast\)/,
    ],
    ['Network loopback', { Network: '127.5.0.0/16' }, /overlaps 127.0.0.0\/8 \(loopback\)/],
    [
      'IPv6Network missing',
      { Network: '10.5.0.0/16', EnableIPv6: true },
      /IPv6Network = null .*please define a correct IPv6Network parameter/,
    ],
    [
      'IPv6Network not a CIDR',
      { Network: '10.5.0.0/16', EnableIPv6: true, IPv6Network: '10.0.0.0/8' },
      /IPv6Network = "10.0.0.0\/8" .*IPv6 CIDR/,
    ],
    [
      'IPv6SubnetLen > 126',
      { EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48', IPv6SubnetLen: 127 },
      /IPv6SubnetLen = 127 .*less than \/127/,
    ],
    [
      'IPv6SubnetLen < prefix + 2',
      { EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48', IPv6SubnetLen: 49 },
      /IPv6SubnetLen = 49 .*at least four subnets/,
    ],
    [
      'IPv6 network too small',
      { EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/125' },
      /IPv6Network is too small. Minimum useful network prefix is \/124/,
    ],
    [
      'IPv6SubnetMin outside',
      { EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48', IPv6SubnetMin: 'fd00::' },
      /IPv6SubnetMin = "fd00::" .*not in the range/,
    ],
    [
      'IPv6SubnetMax unaligned',
      {
        EnableIPv4: false,
        EnableIPv6: true,
        IPv6Network: 'fc00::/48',
        IPv6SubnetMax: 'fc00:0:0:5::1',
      },
      /IPv6SubnetMax = "fc00:0:0:5::1" .*boundary/,
    ],
    [
      'Backend not an object',
      { Network: '10.5.0.0/16', Backend: 'vxlan' },
      /Backend = "vxlan" .*must be an object/,
    ],
    [
      'Backend Type not a string',
      { Network: '10.5.0.0/16', Backend: { Type: 3 } },
      /Backend.Type = 3 .*string/,
    ],
  ])('%s', (_name, input, message) => {
    let caught: unknown;
    try {
      parseNetworkConfig(input);
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'E_CONFIG_INVALID'), String(caught)).toBe(true);
    expect((caught as Error).message).toMatch(message);
  });
});

describe('network config: warnings', () => {
  it('warns about unknown top-level fields and a missing Backend', () => {
    const log = warnRecorder();
    parseNetworkConfig({ Network: '10.5.0.0/16', Netwrok: 'typo', SubnetLen: 24 }, log);
    expect(log.warnings.map((w) => w[0])).toEqual([
      'network config has an unknown field (ignored)',
      expect.stringMatching(/no Backend: using vxlan \(flannel would use udp/),
    ]);
    expect(log.warnings[0]![1]).toEqual({ field: 'Netwrok' });
  });

  it('does not warn for a complete config', () => {
    const log = warnRecorder();
    parseNetworkConfig(
      { Network: '10.5.0.0/16', EnableNFTables: true, Backend: { Type: 'vxlan' } },
      log,
    );
    expect(log.warnings).toEqual([]);
  });
});

describe('network config: two keys naming one field are refused (flannel decodes with Go)', () => {
  const refused = (text: string): string => {
    try {
      parseNetworkConfig(text);
    } catch (err) {
      expect(hasCode(err, 'E_CONFIG_INVALID')).toBe(true);
      return (err as Error).message;
    }
    throw new Error(`accepted: ${text}`);
  };

  it('keys differing only in case, or one written twice, are named', () => {
    expect(refused('{"Network":"10.5.0.0/16","network":"10.6.0.0/16"}')).toBe(
      'network config has the keys "Network" and "network", which name one field: flannel (Go) matches keys case-insensitively and one of them silently wins there; keep only one',
    );
    // Go keeps 20 (a null does not overwrite a number), JSON.parse null: the default 24
    expect(refused('{"Network":"10.5.0.0/16","SubnetLen":20,"SubnetLen":null}')).toMatch(
      /^network config has the keys "SubnetLen" and "SubnetLen"/,
    );
    expect(refused('{"Network":"10.5.0.0/16","Net\\u0077ork":"10.6.0.0/16"}')).toMatch(
      /keys "Network" and "Network"/,
    );
    // Go folds ſ (U+017F) to s: "ſubnetLen" is SubnetLen there
    expect(refused('{"Network":"10.5.0.0/16","SubnetLen":20,"ſubnetLen":22}')).toMatch(
      /keys "SubnetLen" and "ſubnetLen"/,
    );
    expect(() =>
      parseNetworkConfig({ Network: '10.5.0.0/16', ENABLEIPV6: true, enableIPv6: false }),
    ).toThrow(/keys "ENABLEIPV6" and "enableIPv6"/);
  });

  it('inside Backend every key counts (each backend reads a Go struct)', () => {
    expect(refused('{"Network":"10.5.0.0/16","Backend":{"Type":"host-gw","type":null}}')).toMatch(
      /^network config Backend has the keys "Type" and "type"/,
    );
    expect(refused('{"Network":"10.5.0.0/16","backend":{"Type":"vxlan","VNI":2,"vni":3}}')).toMatch(
      /^network config backend has the keys "VNI" and "vni"/,
    );
    expect(refused('{"Network":"10.5.0.0/16","Backend":{"Type":"x","L":[{"a":1,"A":2}]}}')).toMatch(
      /^network config Backend.L\[\] has the keys "a" and "A"/,
    );
  });

  it('what stays accepted: unknown keys (ignored by both), look-alikes inside strings, Go folding', () => {
    const rec = warnRecorder();
    expect(parseNetworkConfig('{"Network":"10.5.0.0/16","foo":1,"FOO":2}', rec).network).toBe(
      '10.5.0.0/16',
    );
    expect(rec.warnings.filter(([m]) => m.includes('unknown field')).length).toBe(2);
    const inString =
      '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","N":"{\\"a\\":1,\\"A\\":2}"}}';
    expect(parseNetworkConfig(inString).backend.type).toBe('vxlan');
    expect(parseNetworkConfig('{"Network":"10.5.0.0/16","ſubnetLen":20}').subnetLen).toBe(20);
    expect(parseNetworkConfig('{"Network":"10.5.0.0/16","\\u0053ubnetLen":20}').subnetLen).toBe(20);
  });
});

describe('networks near the refused ranges', () => {
  it('takes 240.0.0.0/4 (used as extra private space) and global IPv6 ranges', () => {
    const c = parseNetworkConfig(
      JSON.stringify({ Network: '240.5.0.0/16', EnableIPv6: true, IPv6Network: '2001:db8::/32' }),
    );
    expect([c.network, c.ipv6Network]).toEqual(['240.5.0.0/16', '2001:db8::/32']);
  });
});
