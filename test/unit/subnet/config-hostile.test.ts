/**
 * Values from etcd nested deep enough to overflow JSON.stringify must still produce the documented
 * typed errors (E_CONFIG_INVALID → weftd exit 3, E_LEASE_INVALID → the entry is skipped), not a
 * RangeError (exit 1); and error messages show at most a short prefix of a huge value. A value over
 * the size cap is refused by its size; a small one nested too deep by its depth, naming the field.
 */
import { describe, expect, it } from 'vitest';
import { showValue } from '../../../src/errors.js';
import { decodeLeaseAttrs } from '../../../src/lease/codec.js';
import { parseNetworkConfig } from '../../../src/subnet/config.js';

const N = 100_000;
const deep = '['.repeat(N) + '1' + ']'.repeat(N);
const deepSmall = '['.repeat(40) + '1' + ']'.repeat(40);

describe('hostile values in etcd', () => {
  it('a config field nested too deep is E_CONFIG_INVALID naming the field', () => {
    expect(() => parseNetworkConfig(`{"Network":${deepSmall},"Backend":{"Type":"vxlan"}}`)).toThrow(
      expect.objectContaining({
        code: 'E_CONFIG_INVALID',
        message: expect.stringContaining('field Network is nested deeper than 32 levels'),
      }),
    );
    expect(() => parseNetworkConfig(`{"Network":${deep},"Backend":{"Type":"vxlan"}}`)).toThrow(
      expect.objectContaining({
        code: 'E_CONFIG_INVALID',
        message: expect.stringContaining('more than the 65536'),
      }),
    );
  });

  it.each(['PublicIP', 'PublicIPv6', 'BackendType', 'BackendData'])(
    'a lease %s nested too deep is E_LEASE_INVALID',
    (field) => {
      expect(() => decodeLeaseAttrs(`{"${field}":${deepSmall}}`)).toThrow(
        expect.objectContaining({
          code: 'E_LEASE_INVALID',
          message: expect.stringContaining(`"${field}" is nested deeper than 32 levels`),
        }),
      );
      expect(() => decodeLeaseAttrs(`{"${field}":${deep}}`)).toThrow(
        expect.objectContaining({
          code: 'E_LEASE_INVALID',
          message: expect.stringContaining('bytes, more than the 65536'),
        }),
      );
    },
  );

  it('depth is counted outside strings only, and a flannel value is far from the caps', () => {
    const brackets = `{"PublicIP":"198.18.0.1","BackendType":"vxlan","BackendData":{"VtepMAC":"${'['.repeat(100)}"}}`;
    expect(decodeLeaseAttrs(brackets).backendData).toEqual({ VtepMAC: '['.repeat(100) });
    const escaped = `{"PublicIP":"198.18.0.1","X":"\\"${'{'.repeat(50)}"}`;
    expect(decodeLeaseAttrs(escaped).publicIp).toBe('198.18.0.1');
  });

  it('showValue truncates and never throws', () => {
    expect(showValue('x'.repeat(1000))).toHaveLength(81);
    const cyclic: Record<string, unknown> = {};
    cyclic['c'] = cyclic;
    expect(showValue(cyclic)).toBe('{…}');
    expect(showValue(undefined)).toBe('undefined');
    expect(showValue(JSON.parse(deep))).toBe('[…]');
  });
});
