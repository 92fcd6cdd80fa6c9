import { describe, expect, it } from 'vitest';
import { configChanges } from '../../../src/daemon/config-watch.js';
import { parseNetworkConfig } from '../../../src/subnet/config.js';
import { nullLogger } from '../../../src/log/logger.js';

const cfg = (o: Record<string, unknown>) =>
  parseNetworkConfig(JSON.stringify({ Network: '10.5.0.0/16', ...o }), nullLogger);

describe('configChanges (the config in etcd against the running one)', () => {
  it('is empty for the same config, also written differently', () => {
    const a = cfg({ Backend: { Type: 'vxlan' } });
    expect(configChanges(a, cfg({ Backend: { Type: 'vxlan' } }))).toEqual([]);
    expect(configChanges(a, cfg({ SubnetLen: 24, Backend: { Type: 'vxlan' } }))).toEqual([]);
  });
  it('names each changed field with both values', () => {
    const a = cfg({ Backend: { Type: 'vxlan' } });
    const b = cfg({
      Network: '10.6.0.0/16',
      SubnetLen: 25,
      EnableIPv6: true,
      IPv6Network: 'fd05::/48',
      Backend: { Type: 'host-gw' },
    });
    const c = configChanges(a, b);
    expect(c).toContain('network: 10.5.0.0/16 → 10.6.0.0/16');
    expect(c).toContain('subnetLen: 24 → 25');
    expect(c).toContain('enableIPv6: false → true');
    expect(c).toContain('Backend.Type: vxlan → host-gw');
  });
  it('names changed backend keys without their values (a PSK is a secret)', () => {
    const psk = Buffer.alloc(32, 7).toString('base64');
    const a = cfg({ Backend: { Type: 'wireguard' } });
    const b = cfg({ Backend: { Type: 'wireguard', PSK: psk, ListenPort: 51821 } });
    const c = configChanges(a, b);
    expect(c).toEqual(['Backend keys changed: PSK, ListenPort']);
    expect(c.join(' ')).not.toContain(psk);
  });
});
