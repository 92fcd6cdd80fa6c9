/**
 * The WireGuard device's peer-table contract, run against MemoryWgDevice (test/unit/wg-device-memory.test.ts)
 * and the native WireGuardDevice in a test netns (test/integration/wg-device-contract.test.ts). Everything
 * here must hold for both: the public key, peers and allowed IPs programmed exactly (canonical CIDRs, a
 * prefix moving to the peer that sets it last), the same refusals with the same words, closed is closed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  encodeKey,
  generatePrivateKey,
  publicKeyOf,
  type WireGuardPeerSpec,
} from '../../src/dataplane/wireguard-device.js';

/** What the wireguard backend uses of a device. */
export interface WgDeviceUnderTest {
  readonly publicKey: string;
  readonly family: 4 | 6;
  readonly closed: boolean;
  setPeer(spec: WireGuardPeerSpec): void;
  initiate(publicKey: string): void;
  removePeer(publicKey: string): void;
  peerKeys(): string[];
  allowedIpsOf(publicKey: string): string[];
  close(): void;
}

const key = (): string => publicKeyOf(generatePrivateKey());

export function wgDeviceContract(
  label: string,
  start: (privateKey: Buffer) => WgDeviceUnderTest,
): void {
  describe(`WireGuard device contract: ${label}`, () => {
    const started: WgDeviceUnderTest[] = [];
    const open = (priv = generatePrivateKey()): WgDeviceUnderTest => {
      const d = start(priv);
      started.push(d);
      return d;
    };
    afterEach(() => {
      for (const d of started.splice(0)) d.close();
    });

    it('publishes the public key of its private key', () => {
      const priv = generatePrivateKey();
      expect(open(priv).publicKey).toBe(publicKeyOf(priv));
    });

    it('programs peers and exactly their allowed IPs, as canonical CIDRs; a prefix moves to the peer that sets it last', () => {
      const d = open();
      const [a, b] = [key(), key()];
      d.setPeer({ publicKey: a, allowedIps: ['10.5.2.0/24', '10.5.3.0/24'] });
      d.setPeer({
        publicKey: b,
        allowedIps: ['10.5.3.0/24', '10.5.4.0/24'],
        endpoint: { address: '198.18.0.2', port: 51820 },
        persistentKeepalive: 25,
      });
      expect(d.peerKeys()).toEqual([a, b]);
      expect(d.allowedIpsOf(a)).toEqual(['10.5.2.0/24']);
      expect(d.allowedIpsOf(b)).toEqual(['10.5.3.0/24', '10.5.4.0/24']);
      // a set replaces: what is not named again is dropped
      d.setPeer({ publicKey: b, allowedIps: ['10.5.4.0/24', 'fd05:0:0:4:0::/64'] });
      expect(d.allowedIpsOf(b)).toEqual(['10.5.4.0/24', 'fd05:0:0:4::/64']);
      expect(d.peerKeys()).toEqual([a, b]);
      d.removePeer(a);
      expect(d.peerKeys()).toEqual([b]);
      expect(d.allowedIpsOf(a)).toEqual([]);
    });

    it.each<[string, Partial<WireGuardPeerSpec>, RegExp]>([
      [
        'a key that is not base64',
        { publicKey: 'not a key' },
        /^peer publicKey must be a base64 WireGuard key/,
      ],
      ['a PSK that is not a key', { presharedKey: 'x'.repeat(44) }, /^presharedKey must be/],
      ['a keepalive over 65535 s', { persistentKeepalive: 70_000 }, /^persistentKeepalive must be/],
      [
        'an endpoint without a port',
        { endpoint: { address: '198.18.0.2', port: 0 } },
        /^endpoint port must be/,
      ],
      [
        'an endpoint of the other family',
        { endpoint: { address: 'fd18::2', port: 51820 } },
        /^endpoint address must be an IPv4 address/,
      ],
      [
        'an allowed IP that is no CIDR',
        { allowedIps: ['10.5.2.0'] },
        /^dst must be an IPv4 or IPv6 CIDR/,
      ],
      [
        'an allowed IP with host bits',
        { allowedIps: ['10.5.2.1/24'] },
        /has host bits set: use 10\.5\.2\.0\/24/,
      ],
    ])('refuses %s naming the field, and programs nothing', (_what, bad, message) => {
      const d = open();
      const spec = { publicKey: key(), allowedIps: ['10.5.2.0/24'], ...bad };
      expect(() => d.setPeer(spec)).toThrow(TypeError);
      expect(() => d.setPeer(spec)).toThrow(message);
      expect(d.peerKeys()).toEqual([]);
    });

    it('names a peer by its key in canonical base64 (a non-canonical spelling of one key is that key)', () => {
      const d = open();
      const k = key();
      // the last character's unused padding bits set: the same 32 bytes
      const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
      const alias = k.slice(0, 42) + b64.charAt(b64.indexOf(k.charAt(42)) | 1) + '=';
      expect(alias).not.toBe(k);
      expect(encodeKey(Buffer.from(alias, 'base64'))).toBe(k);
      d.setPeer({ publicKey: alias, allowedIps: ['10.5.2.0/24'] });
      expect(d.peerKeys()).toEqual([k]);
      d.removePeer(alias);
      expect(d.peerKeys()).toEqual([]);
    });

    it('refuses every change once closed; closing again is harmless', () => {
      const d = open();
      const k = key();
      d.setPeer({ publicKey: k, allowedIps: ['10.5.2.0/24'] });
      d.close();
      d.close();
      expect(d.closed).toBe(true);
      for (const change of [
        () => d.setPeer({ publicKey: k, allowedIps: ['10.5.3.0/24'] }),
        () => d.initiate(k),
        () => d.removePeer(k),
      ])
        expect(change).toThrow(/WireGuard device is closed/);
      expect(() => d.initiate('not a key')).toThrow(/^peer publicKey must be/);
    });
  });
}
