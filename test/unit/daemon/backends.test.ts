import { describe, expect, it } from 'vitest';
import { createBackendRegistry, lookupBackend } from '../../../src/daemon/backends.js';
import type { Backend, BackendFactory } from '../../../src/backend/backend.js';
import { WeftError } from '../../../src/errors.js';

const stub: BackendFactory = () => ({}) as Backend;

describe('backend registry', () => {
  it('looks names up lower-cased', () => {
    const reg = createBackendRegistry({ vxlan: stub, 'Host-GW': stub });
    expect(lookupBackend(reg, 'VXLAN')).toBe(stub);
    expect(lookupBackend(reg, 'host-gw')).toBe(stub);
  });
  it('an unknown type is E_UNKNOWN_BACKEND naming the known ones', () => {
    const reg = createBackendRegistry({ vxlan: stub, 'host-gw': stub });
    try {
      lookupBackend(reg, 'ipsec');
      throw new Error('not thrown');
    } catch (err) {
      expect(err).toBeInstanceOf(WeftError);
      expect((err as WeftError).code).toBe('E_UNKNOWN_BACKEND');
      expect((err as Error).message).toBe(
        'unknown backend type: ipsec: set Backend.Type in the network config to one of host-gw, vxlan',
      );
    }
  });
});
