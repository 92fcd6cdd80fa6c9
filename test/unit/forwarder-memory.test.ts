/**
 * MemoryForwarder: the shared Forwarder contract, plus the simulated forwarding rules the UDP backend's
 * unit tests rely on (the native forwarder proves the same rules with real packets in
 * test/integration/forwarder.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { MemoryForwarder } from '../fakes/memory-forwarder.js';
import { forwarderContract } from '../dataplane/forwarder.contract.js';

forwarderContract('MemoryForwarder', () => ({
  start: (opts) =>
    MemoryForwarder.start({ tunFd: 7, port: 0, mtu: 1472, localSubnets: [], ...opts }),
}));

const LOCAL = ['10.244.1.0/24', 'fd00:10:244:1::/64'];

describe('MemoryForwarder forwarding rules', () => {
  const make = (): MemoryForwarder => {
    const f = MemoryForwarder.start({ tunFd: 7, port: 8285, mtu: 1472, localSubnets: LOCAL });
    f.setRoute('10.244.0.0/16', '198.18.0.9', 8285);
    f.setRoute('10.244.2.0/24', '198.18.0.2', 8285);
    f.setRoute('10.244.3.0/24', '198.18.0.3', 9000);
    return f;
  };

  it('sends to the longest matching prefix and drops what has no route', () => {
    const f = make();
    expect(f.fromTun({ src: '10.244.1.2', dst: '10.244.2.7', bytes: 100 })).toEqual({
      kind: 'sent',
      peerIp: '198.18.0.2',
      port: 8285,
    });
    expect(f.fromTun({ src: '10.244.1.2', dst: '10.244.3.7' })).toMatchObject({ port: 9000 });
    expect(f.fromTun({ src: '10.244.1.2', dst: '10.244.77.7' })).toMatchObject({
      peerIp: '198.18.0.9',
    });
    expect(f.fromTun({ src: '10.244.1.2', dst: '10.245.0.1' })).toEqual({
      kind: 'dropped',
      reason: 'noRoute',
    });
    expect(f.fromTun({ src: '10.244.1.2', dst: '10.244.2.7', ttl: 1 })).toMatchObject({
      reason: 'ttl',
    });
    const s = f.stats();
    expect(s.txPackets).toBe(3);
    expect(s.txBytes).toBe(100);
    expect(s.drops.noRoute).toBe(1);
    expect(s.drops.ttl).toBe(1);
  });

  it('accepts datagrams only from a peer and only with an inner source in its subnets', () => {
    const f = make();
    expect(f.fromPeer('198.18.0.2', { src: '10.244.2.5', dst: '10.244.1.2' })).toEqual({
      kind: 'delivered',
    });
    expect(f.fromPeer('198.18.0.66', { src: '10.244.2.5', dst: '10.244.1.2' })).toEqual({
      kind: 'dropped',
      reason: 'unknownPeer',
    });
    // a known peer claiming another peer's subnet
    expect(f.fromPeer('198.18.0.3', { src: '10.244.2.5', dst: '10.244.1.2' })).toEqual({
      kind: 'dropped',
      reason: 'badInnerSource',
    });
    // the /16 peer does not own the more specific /24 inside it
    expect(f.fromPeer('198.18.0.9', { src: '10.244.2.5', dst: '10.244.1.2' })).toMatchObject({
      reason: 'badInnerSource',
    });
    expect(f.fromPeer('198.18.0.9', { src: '10.244.9.5', dst: '10.244.1.2' })).toMatchObject({
      kind: 'delivered',
    });
    // a real peer with its own inner source, aimed past this host (relaying): dropped
    expect(f.fromPeer('198.18.0.2', { src: '10.244.2.5', dst: '10.244.3.7' })).toEqual({
      kind: 'dropped',
      reason: 'badInnerDest',
    });
    expect(f.fromPeer('198.18.0.2', { src: '10.244.2.5', dst: '169.254.169.254' })).toMatchObject({
      reason: 'badInnerDest',
    });
    f.deleteRoute('10.244.2.0/24');
    expect(f.fromPeer('198.18.0.2', { src: '10.244.2.5', dst: '10.244.1.2' })).toMatchObject({
      reason: 'unknownPeer',
    });
    const d = f.stats().drops;
    expect([d.unknownPeer, d.badInnerSource, d.badInnerDest]).toEqual([2, 2, 2]);
  });

  it('reports missing offloads as fallback and a fatal stop as an error event', async () => {
    const f = MemoryForwarder.start(
      { tunFd: 7, port: 8285, mtu: 1472, localSubnets: LOCAL },
      { offloads: { udpGso: false } },
    );
    expect(f.fallback).toEqual(['udpGso']);
    const errors: unknown[] = [];
    f.on('error', (e) => errors.push(e));
    f.failWith('EBADFD', 'read');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'E_NATIVE', details: { code: 'EBADFD' } });
    expect(f.stats().running).toBe(false);
    expect(() => f.setRoute('10.244.2.0/24', '198.18.0.2', 8285)).toThrow(/stopped/);
    await expect(f.settled()).rejects.toMatchObject({ details: { code: 'EBADFD' } });
  });
});
