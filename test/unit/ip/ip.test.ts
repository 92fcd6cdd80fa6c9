import { describe, expect, it } from 'vitest';
import {
  canonicalCidr,
  cidrContainsIp,
  cidrCovers,
  formatIp4,
  formatIp6,
  formatMac,
  Ip4Net,
  Ip6Net,
  ipFamily,
  networkAddress,
  parseIp4,
  parseIp6,
  parseMac,
  tryParseIp4,
  tryParseIp6,
  tryParseMac,
  LOWER_HEX_DIGIT,
  canonicalMacInto,
} from '../../../src/ip/index.js';

describe('IPv4', () => {
  it.each([
    ['0.0.0.0', 0],
    ['10.5.0.1', 0x0a050001],
    ['255.255.255.255', 0xffffffff],
  ])('parses %s', (text, value) => {
    expect(parseIp4(text)).toBe(value);
    expect(formatIp4(value)).toBe(text);
  });

  it.each([
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '01.2.3.4',
    ' 1.2.3.4',
    '1.2.3.4 ',
    'a.b.c.d',
    '1..2.3',
  ])('rejects %j', (text) => {
    expect(tryParseIp4(text)).toBeNull();
    expect(() => parseIp4(text)).toThrow(/invalid IPv4 address/);
  });

  it('parses CIDRs, clearing host bits unless strict', () => {
    expect(Ip4Net.parse('10.5.52.1/24').toString()).toBe('10.5.52.0/24');
    expect(Ip4Net.tryParse('10.5.52.1/24', { strict: true })).toBeNull();
    expect(Ip4Net.tryParse('10.5.0.0/33')).toBeNull();
    expect(Ip4Net.tryParse('10.5.0.0/024')).toBeNull();
    expect(Ip4Net.tryParse('10.5.0.0')).toBeNull();
    for (const len of ['', '08', '00', '3x', 'x', '-1', '+8', '1 ', '100', '٣'])
      expect(Ip4Net.tryParse(`10.5.0.0/${len}`), len).toBeNull();
    for (const len of [0, 1, 9, 10, 24, 32])
      expect(Ip4Net.tryParse(`10.0.0.0/${len}`)?.prefixLen, String(len)).toBe(len);
  });

  it('contains, overlaps, iterates', () => {
    const net = Ip4Net.parse('10.5.0.0/16');
    expect(net.contains(Ip4Net.parse('10.5.3.0/24'))).toBe(true);
    expect(net.contains(Ip4Net.parse('10.6.0.0/24'))).toBe(false);
    expect(net.contains(Ip4Net.parse('10.0.0.0/8'))).toBe(false);
    expect(net.overlaps(Ip4Net.parse('10.0.0.0/8'))).toBe(true);
    expect(net.containsIp(parseIp4('10.5.255.255'))).toBe(true);
    expect([...Ip4Net.parse('10.5.0.0/22').subnets(24)].map(String)).toEqual([
      '10.5.0.0/24',
      '10.5.1.0/24',
      '10.5.2.0/24',
      '10.5.3.0/24',
    ]);
    expect(Ip4Net.parse('255.255.255.0/24').next()).toBeNull();
    expect(net.size).toBe(65536);
    expect(formatIp4(net.last)).toBe('10.5.255.255');
  });
});

describe('IPv6', () => {
  it.each([
    ['FC00:0:0:0:0:0:0:0', 'fc00::'],
    ['fd00:12:13::', 'fd00:12:13::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:db8::ff00:42:8329'],
    ['::', '::'],
    ['::1', '::1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],
    ['::ffff:1.2.3.4', '::ffff:102:304'],
  ])('canonical form of %s is %s', (text, canonical) => {
    expect(formatIp6(parseIp6(text))).toBe(canonical);
  });

  it.each([
    '',
    ':',
    ':::',
    '1:::2',
    '1::2::3',
    '12345::',
    'g::',
    '1:2:3:4:5:6:7:8:9',
    'fe80::1%eth0',
    '[::1]',
  ])('rejects %j', (text) => expect(tryParseIp6(text)).toBeNull());

  it('networks', () => {
    const net = Ip6Net.parse('fc00::/48');
    expect(Ip6Net.parse('fc00::1/64').toString()).toBe('fc00::/64');
    expect(Ip6Net.tryParse('fc00::1/64', { strict: true })).toBeNull();
    expect(net.contains(Ip6Net.parse('fc00:0:0:5::/64'))).toBe(true);
    expect(net.contains(Ip6Net.parse('fc01::/64'))).toBe(false);
    expect([...Ip6Net.parse('fc00::/62').subnets(64)].map(String)).toEqual([
      'fc00::/64',
      'fc00:0:0:1::/64',
      'fc00:0:0:2::/64',
      'fc00:0:0:3::/64',
    ]);
  });
});

describe('generic CIDR and MAC', () => {
  it('canonicalises either family', () => {
    expect(canonicalCidr('10.5.52.1/24')).toBe('10.5.52.0/24');
    expect(canonicalCidr('FC00:0::1/64')).toBe('fc00::/64');
    expect(() => canonicalCidr('bogus')).toThrow(/invalid CIDR "bogus"/);
    expect(ipFamily('10.0.0.1')).toBe(4);
    expect(ipFamily('fc00::1')).toBe(6);
    expect(ipFamily('x')).toBeNull();
    expect(cidrContainsIp('10.5.0.0/16', '10.5.9.9')).toBe(true);
    expect(cidrContainsIp('10.5.0.0/16', 'fc00::1')).toBe(false);
  });

  it('network address and containment of an address or a CIDR', () => {
    expect(canonicalCidr('10.5.3.7/16')).toBe('10.5.0.0/16');
    expect(networkAddress('fd05:0:0:9::5/64')).toBe('fd05:0:0:9::');
    expect(networkAddress('198.18.201.77/23')).toBe('198.18.200.0');
    expect(canonicalCidr('0.0.0.0/0')).toBe('0.0.0.0/0');
    expect(canonicalCidr('255.255.255.255/1')).toBe('128.0.0.0/1');
    expect(cidrCovers('10.5.0.0/16', '10.5.9.0/24')).toBe(true);
    expect(cidrCovers('10.5.0.0/16', '10.0.0.0/8')).toBe(false);
    expect(cidrCovers('10.5.0.0/16', '10.6.0.1')).toBe(false);
    expect(cidrCovers('10.5.0.0/16', 'fd05::1')).toBe(false);
    expect(cidrCovers('fd05::/48', 'fd05:0:0:2::/64')).toBe(true);
    expect(cidrCovers('0.0.0.0/0', '255.1.2.3')).toBe(true);
    expect(cidrCovers('200.0.0.0/8', '201.0.0.0/32')).toBe(false);
    expect(cidrCovers('10.5.0.0/16', '::ffff:10.5.0.1')).toBe(false);
    expect(() => cidrCovers('10.5.0.0/16', '10.5.0.01')).toThrow(/invalid IP address/);
    expect(() => cidrCovers('10.5.0.0/33', '10.5.0.1')).toThrow(/invalid CIDR/);
    expect(() => networkAddress('010.5.0.0/16')).toThrow(/invalid CIDR/);
  });

  it('MACs', () => {
    expect(formatMac(parseMac('C6-D2-32-6F-8F-44'))).toBe('c6:d2:32:6f:8f:44');
    expect(formatMac(parseMac('c6:d2:32:6f:8f:44'))).toBe('c6:d2:32:6f:8f:44');
    expect(() => parseMac('c6:d2:32:6f:8f')).toThrow(/invalid MAC/);
    expect(() => parseMac('c6:d2-32:6f:8f:44')).toThrow(/invalid MAC/);
    expect(() => formatMac([1, 2, 3])).toThrow(/6 bytes/);
  });
});

/**
 * The character-scan parsers against the regular expressions they replaced (the grammar the docs state),
 * over a corpus of valid values, their one-character mutations and random strings from their alphabet.
 */
describe('scan parsers = the regex grammar', () => {
  const QUAD = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;
  const refIp4 = (t: string): number | null => {
    const m = QUAD.exec(t);
    if (!m) return null;
    let v = 0;
    for (let i = 1; i <= 4; i++) {
      const o = Number(m[i]);
      if (o > 255) return null;
      v = v * 256 + o;
    }
    return v;
  };
  const MAC = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/;
  const refMac = (t: string): number[] | null =>
    MAC.test(t) ? t.split(/[:-]/).map((h) => parseInt(h, 16)) : null;

  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const ALPHA = '0123456789.:-abcdefABCDEFgx /\u0660\n';
  const corpus = (valid: string[]): string[] => {
    const out = [...valid];
    for (const v of valid)
      for (let i = 0; i < 40; i++) {
        const at = rnd(v.length + 1);
        const c = ALPHA[rnd(ALPHA.length)]!;
        const op = rnd(3);
        out.push(
          op === 0
            ? v.slice(0, at) + c + v.slice(at)
            : op === 1
              ? v.slice(0, at) + v.slice(at + 1)
              : v.slice(0, at) + c + v.slice(at + 1),
        );
      }
    for (let i = 0; i < 20000; i++) {
      let t = '';
      const len = rnd(20);
      for (let j = 0; j < len; j++) t += ALPHA[rnd(ALPHA.length)];
      out.push(t);
    }
    return out;
  };

  it('tryParseIp4', () => {
    const valid = [
      '0.0.0.0',
      '1.2.3.4',
      '10.5.0.1',
      '255.255.255.255',
      '198.18.0.1',
      '9.99.199.249',
    ];
    let accepted = 0;
    for (const t of corpus(valid)) {
      expect(tryParseIp4(t), JSON.stringify(t)).toBe(refIp4(t));
      if (refIp4(t) !== null) accepted++;
    }
    expect(accepted).toBeGreaterThan(valid.length);
  });

  it('canonicalMacInto: the canonical form only, written at the offset', () => {
    const out = new Uint8Array(8);
    expect(canonicalMacInto('0e:42:00:a0:01:ff', out, 2)).toBe(true);
    expect([...out]).toEqual([0, 0, 0x0e, 0x42, 0x00, 0xa0, 0x01, 0xff]);
    for (const bad of [
      '0E:42:00:a0:01:ff',
      '0e-42-00-a0-01-ff',
      '0e:42:00:a0:01',
      '0e:42:00:a0:01:ffx',
      '0e:42:00:a0:01:f\u0131',
    ])
      expect(canonicalMacInto(bad, out, 0), bad).toBe(false);
  });

  it('tryParseIp4 remembers the last two texts: repeats and alternations give what the scan gives', () => {
    // Repeats, alternations of two and three texts, equal texts as distinct strings (a slice), and a
    // rejected text between accepted ones: the memo must answer exactly what the scan would.
    const texts = ['10.5.1.0', '198.18.0.2', '10.05.1.0', '10.5.1.0/24'.slice(0, 8), '', '1.2.3.4'];
    for (let i = 0; i < 400; i++) {
      const t = texts[rnd(texts.length)]!;
      expect(tryParseIp4(t), JSON.stringify(t)).toBe(refIp4(t));
    }
  });

  it('canonicalMacInto remembers the last MAC: repeats write the same bytes, anything else is scanned', () => {
    const texts = [
      '0e:42:00:a0:01:ff',
      'c6:d2:32:6f:8f:44',
      '0E:42:00:a0:01:ff',
      'zz:42:00:a0:01:ff',
    ];
    const canonical = (t: string): number[] | null =>
      /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(t) ? t.split(':').map((h) => parseInt(h, 16)) : null;
    for (let i = 0; i < 400; i++) {
      const t = texts[rnd(texts.length)]!;
      const off = rnd(4);
      const out = new Uint8Array(10).fill(0xaa);
      const want = canonical(t);
      expect(canonicalMacInto(t, out, off), t).toBe(want !== null);
      if (want) expect([...out.subarray(off, off + 6)], t).toEqual(want);
    }
    // Too little room at the offset: the bytes that fit are written, the memo is not used or filled.
    const small = new Uint8Array(4);
    expect(canonicalMacInto('0e:42:00:a0:01:ff', small, 0)).toBe(true);
    expect([...small]).toEqual([0x0e, 0x42, 0x00, 0xa0]);
    const out = new Uint8Array(6);
    expect(canonicalMacInto('c6:d2:32:6f:8f:44', out, 0)).toBe(true);
    expect([...out]).toEqual([0xc6, 0xd2, 0x32, 0x6f, 0x8f, 0x44]);
  });

  it('LOWER_HEX_DIGIT: the lower-case hex digits, -1 for every other character', () => {
    for (let c = 0; c < 128; c++) {
      const ch = String.fromCharCode(c);
      const want = /^[0-9a-f]$/.test(ch) ? parseInt(ch, 16) : -1;
      expect(LOWER_HEX_DIGIT[c], ch).toBe(want);
    }
    expect(LOWER_HEX_DIGIT.length).toBe(128);
  });

  it('tryParseMac and formatMac', () => {
    const valid = [
      'c6:d2:32:6f:8f:44',
      '0E-42-00-00-0A-FF',
      '00:00:00:00:00:00',
      'ff:ff:ff:ff:ff:ff',
    ];
    let accepted = 0;
    for (const t of corpus(valid)) {
      const got = tryParseMac(t);
      const ref = refMac(t);
      expect(got === null ? null : [...got], JSON.stringify(t)).toEqual(ref);
      if (got) {
        accepted++;
        expect(formatMac(got)).toBe(t.toLowerCase().replaceAll('-', ':'));
      }
    }
    expect(accepted).toBeGreaterThan(valid.length);
  });
});
