/**
 * Property tests over seeded random hostile input (issue 11 item 4): for any text, the lease codec
 * either returns attributes or throws E_LEASE_INVALID, the config parser either returns a config or
 * throws a ConfigError, and the watch diff compares any two decoded leases without throwing. The
 * generator mixes valid flannel values with mutations: deep nesting, huge strings, odd numbers, wrong
 * types, prototype-named fields, truncation, random bytes. Replay a failure with WEFT_FUZZ_SEED.
 */
import { describe, expect, it } from 'vitest';
import { WeftError } from '../../../src/errors.js';
import { decodeLeaseAttrs, encodeLeaseAttrs } from '../../../src/lease/codec.js';
import { diffLeases, leaseChanged } from '../../../src/lease/diff.js';
import type { Lease, LeaseAttrs } from '../../../src/lease/lease.js';
import { parseNetworkConfig } from '../../../src/subnet/config.js';
import { prng } from '../../helpers/random.js';

const SEED = Number(process.env['WEFT_FUZZ_SEED'] ?? Date.now() % 1_000_000);
const RUNS = 1000;

/** A random JSON-ish fragment (sometimes not JSON at all). */
function fragment(rnd: () => number, budget = 3): string {
  const r = rnd();
  const n = Math.floor(rnd() * 5);
  if (budget <= 0 || r < 0.3)
    return [
      '1',
      '-0',
      '1e400',
      '-1e400',
      '123456789012345678901234567890',
      'null',
      'true',
      '"198.18.0.1"',
      '"fc00::1"',
      '"vxlan"',
      '"\\ud800"',
      '"\\u0000"',
      `"${'x'.repeat(n * 1000)}"`,
      '"__proto__"',
    ][Math.floor(rnd() * 14)]!;
  if (r < 0.36) {
    const depth = [40, 1000, 30_000][Math.floor(rnd() * 3)]!;
    return rnd() < 0.5
      ? '['.repeat(depth) + ']'.repeat(depth)
      : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
  }
  if (r < 0.7) return `[${Array.from({ length: n }, () => fragment(rnd, budget - 1)).join(',')}]`;
  const keys = [
    'PublicIP',
    'publicip',
    'PublicIPv6',
    'BackendType',
    'BackendData',
    'VNI',
    'VtepMAC',
    '__proto__',
    'constructor',
    'Network',
    'SubnetLen',
    'Backend',
    'Type',
    'EnableIPv6',
    'IPv6Network',
  ];
  return `{${Array.from({ length: n }, () => `"${keys[Math.floor(rnd() * keys.length)]}":${fragment(rnd, budget - 1)}`).join(',')}}`;
}

function mutate(rnd: () => number, text: string): string {
  const r = rnd();
  if (r < 0.2) return text.slice(0, Math.floor(rnd() * text.length));
  if (r < 0.4) {
    const bytes = Buffer.from(text);
    for (let i = 0; i < 3; i++) bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
    return bytes.toString();
  }
  return text;
}

const valid = (n: number): LeaseAttrs => ({
  publicIp: `198.18.0.${n % 250}`,
  publicIpv6: null,
  backendType: 'vxlan',
  backendData: { VNI: 1, VtepMAC: '0e:00:5e:00:00:01' },
});

function hostileText(rnd: () => number, i: number): string {
  const r = rnd();
  if (r < 0.2) return mutate(rnd, encodeLeaseAttrs(valid(i)));
  if (r < 0.9) return mutate(rnd, fragment(rnd));
  return Buffer.from(Array.from({ length: Math.floor(rnd() * 300) }, () => rnd() * 256)).toString();
}

describe(`hostile input properties (seed ${SEED})`, () => {
  it('decodeLeaseAttrs returns attributes or throws E_LEASE_INVALID, and the diff never throws', () => {
    const rnd = prng(SEED);
    const decoded: Lease[] = [];
    for (let i = 0; i < RUNS; i++) {
      const text = hostileText(rnd, i);
      let attrs: LeaseAttrs;
      try {
        attrs = decodeLeaseAttrs(text);
      } catch (err) {
        expect(err, `seed ${SEED} run ${i}: ${text.slice(0, 200)}`).toBeInstanceOf(WeftError);
        expect((err as WeftError).code).toBe('E_LEASE_INVALID');
        expect((err as Error).message.length).toBeLessThan(400);
        continue;
      }
      decoded.push({
        key: `10.5.${i % 250}.0-24`,
        subnet: `10.5.${i % 250}.0/24`,
        subnet6: null,
        attrs,
        expiration: null,
      });
    }
    expect(decoded.length, 'some hostile values are still valid leases').toBeGreaterThan(10);
    for (let i = 1; i < decoded.length; i++) {
      expect(() => leaseChanged(decoded[i - 1]!, decoded[i]!)).not.toThrow();
      expect(leaseChanged(decoded[i]!, decoded[i]!)).toBe(false);
    }
    const known = new Map(decoded.map((l) => [l.key, l]));
    expect(() => diffLeases(known, [...decoded].reverse())).not.toThrow();
  });

  it('parseNetworkConfig returns a config or throws a ConfigError naming the problem', () => {
    const rnd = prng(SEED + 1);
    let ok = 0;
    for (let i = 0; i < RUNS; i++) {
      const text =
        rnd() < 0.3
          ? mutate(rnd, `{"Network":"10.5.0.0/16","Backend":${fragment(rnd, 3)}}`)
          : hostileText(rnd, i);
      try {
        parseNetworkConfig(text);
        ok++;
      } catch (err) {
        expect(err, `seed ${SEED} run ${i}: ${text.slice(0, 200)}`).toBeInstanceOf(WeftError);
        expect((err as WeftError).code).toBe('E_CONFIG_INVALID');
        expect((err as Error).message.length).toBeLessThan(400);
      }
    }
    expect(ok, 'some hostile configs are valid').toBeGreaterThan(0);
  });
});
