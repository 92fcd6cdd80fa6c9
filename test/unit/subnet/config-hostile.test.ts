/**
 * Values from etcd nested deep enough to overflow JSON.stringify must still produce the documented
 * typed errors (E_CONFIG_INVALID → weftd exit 3, E_LEASE_INVALID → the entry is skipped), not a
 * RangeError (exit 1); and error messages show at most a short prefix of a huge value.
 */
import { describe, expect, it } from 'vitest';
import { showValue } from '../../../src/errors.js';
import { decodeLeaseAttrs } from '../../../src/lease/codec.js';
import { parseNetworkConfig } from '../../../src/subnet/config.js';

const N = 100_000;
const deep = '['.repeat(N) + '1' + ']'.repeat(N);

describe('hostile values in etcd', () => {
  it('a config field nested too deep is E_CONFIG_INVALID naming the field', () => {
    expect(() => parseNetworkConfig(`{"Network":${deep},"Backend":{"Type":"vxlan"}}`)).toThrow(
      expect.objectContaining({
        code: 'E_CONFIG_INVALID',
        message: expect.stringContaining('Network'),
      }),
    );
  });

  it.each(['PublicIP', 'PublicIPv6', 'BackendType'])(
    'a lease %s nested too deep is E_LEASE_INVALID',
    (field) => {
      expect(() => decodeLeaseAttrs(`{"${field}":${deep}}`)).toThrow(
        expect.objectContaining({
          code: 'E_LEASE_INVALID',
          message: expect.stringContaining(field),
        }),
      );
    },
  );

  it('showValue truncates and never throws', () => {
    expect(showValue('x'.repeat(1000))).toHaveLength(81);
    const cyclic: Record<string, unknown> = {};
    cyclic['c'] = cyclic;
    expect(showValue(cyclic)).toBe('{…}');
    expect(showValue(undefined)).toBe('undefined');
    expect(showValue(JSON.parse(deep))).toBe('[…]');
  });
});
