/**
 * The Forwarder contract (docs/design.md C9), run against MemoryForwarder (test/unit/forwarder-memory.test.ts)
 * and NativeForwarder (test/integration/forwarder-native.test.ts). Everything here must hold for both:
 * argument validation with exact messages, route bookkeeping, command ordering, counters, close.
 */
import { describe, expect, it } from 'vitest';
import type { Forwarder, ForwarderOptions } from '../../src/dataplane/forwarder.js';
import { WeftError } from '../../src/errors.js';

export interface ForwarderHarness {
  /** Starts a forwarder; the harness supplies `tunFd` unless `opts` sets it. */
  start(opts?: Partial<ForwarderOptions>): Forwarder;
}

const BASE = { port: 0, mtu: 1472, localSubnets: ['10.244.1.0/24', 'fd00:10:244:1::/64'] };

export function forwarderContract(label: string, harness: () => ForwarderHarness): void {
  describe(`Forwarder contract: ${label}`, () => {
    const started: Forwarder[] = [];
    const start = (opts: Partial<ForwarderOptions> = {}): Forwarder => {
      const f = harness().start({ ...BASE, ...opts });
      started.push(f);
      return f;
    };
    const closeAll = (): void => {
      for (const f of started.splice(0)) f.close();
    };

    it.each([
      [{ tunFd: -1 }, 'tunFd must be a non-negative integer, got -1'],
      [{ tunFd: 1.5 }, 'tunFd must be a non-negative integer, got 1.5'],
      [{ port: -1 }, 'port must be an integer 0-65535, got -1'],
      [{ port: 65536 }, 'port must be an integer 0-65535, got 65536'],
      [{ port: '8285' as unknown as number }, 'port must be an integer 0-65535, got "8285"'],
      [{ mtu: 100 }, 'mtu must be an integer 576-65535, got 100'],
      [{ mtu: 70000 }, 'mtu must be an integer 576-65535, got 70000'],
      [
        { bindAddress: '198.18.0' },
        'bindAddress must be an IPv4 address such as 198.18.0.1, got "198.18.0"',
      ],
      [{ bindAddress: '::1' }, 'bindAddress must be an IPv4 address such as 198.18.0.1, got "::1"'],
      [
        { localSubnets: '10.244.1.0/24' as unknown as string[] },
        'localSubnets must be an array of at most 16 CIDRs (this host\'s lease subnets), got "10.244.1.0/24"',
      ],
      [
        { localSubnets: ['10.244.1.1/24'] },
        'dst "10.244.1.1/24" has host bits set: use 10.244.1.0/24',
      ],
      [{ maxRoutes: 0 }, 'maxRoutes must be a positive integer, got 0'],
      [{ threads: 3 as 2 }, 'threads must be 1 or 2, got 3'],
      [{ nice: -21 }, 'nice must be an integer -20..19, got -21'],
    ] as const)('start rejects %o with an exact TypeError', (opts, message) => {
      expect(() => start(opts)).toThrow(new TypeError(message));
    });

    it('starts running with zero counters, an ephemeral port and consistent offload flags', () => {
      try {
        const f = start();
        expect(f.closed).toBe(false);
        expect(f.localPort).toBeGreaterThan(0);
        const s = f.stats();
        expect(s.running).toBe(true);
        expect(s.txPackets + s.rxPackets + s.routes + s.commandsFailed).toBe(0);
        expect(f.localSubnets()).toEqual(BASE.localSubnets);
        expect(Object.values(s.drops).every((v) => v === 0)).toBe(true);
        for (const v of Object.values(s.offloads)) expect(typeof v).toBe('boolean');
        const off = Object.entries(s.offloads)
          .filter(([, on]) => !on)
          .map(([k]) => k);
        expect([...f.fallback]).toEqual(off);
      } finally {
        closeAll();
      }
    });

    it.each([
      ['10.244.1.0', 1, 'dst must be an IPv4 or IPv6 CIDR such as 10.244.2.0/24, got "10.244.1.0"'],
      [
        '10.244.1.0/33',
        1,
        'dst must be an IPv4 or IPv6 CIDR such as 10.244.2.0/24, got "10.244.1.0/33"',
      ],
      [42, 1, 'dst must be an IPv4 or IPv6 CIDR such as 10.244.2.0/24, got 42'],
      ['10.244.1.5/24', 1, 'dst "10.244.1.5/24" has host bits set: use 10.244.1.0/24'],
      ['10.244.1.0/24', 2, 'peerIp must be an IPv4 address such as 198.18.0.2, got "198.18.0"'],
      ['10.244.1.0/24', 3, 'peerIp must be an IPv4 address such as 198.18.0.2, got "fd18::2"'],
      ['10.244.1.0/24', 4, 'port must be an integer 1-65535, got 0'],
      ['10.244.1.0/24', 5, 'port must be an integer 1-65535, got 65536'],
    ] as const)('setRoute(%o) case %i rejects with an exact TypeError', (dst, variant, message) => {
      const args: Record<number, [string, number]> = {
        1: ['198.18.0.2', 8285],
        2: ['198.18.0', 8285],
        3: ['fd18::2', 8285],
        4: ['198.18.0.2', 0],
        5: ['198.18.0.2', 65536],
      };
      const [peer, port] = args[variant]!;
      try {
        const f = start();
        const q0 = f.stats().commandsQueued;
        expect(() => f.setRoute(dst as string, peer, port)).toThrow(new TypeError(message));
        expect(f.routes()).toEqual([]);
        expect(f.stats().commandsQueued).toBe(q0);
      } finally {
        closeAll();
      }
    });

    it('sets, replaces and deletes routes; the table follows in call order', async () => {
      try {
        const f = start();
        const q0 = f.stats().commandsQueued;
        f.setRoute('10.244.3.0/24', '198.18.0.3', 8285);
        f.setRoute('10.244.2.0/24', '198.18.0.2', 8285);
        f.setRoute('fd00:10:244:2::/64', '198.18.0.2', 8285);
        f.setRoute('10.244.2.0/24', '198.18.0.4', 9000); // replace
        expect(f.routes()).toEqual([
          { dst: '10.244.2.0/24', peerIp: '198.18.0.4', port: 9000 },
          { dst: '10.244.3.0/24', peerIp: '198.18.0.3', port: 8285 },
          { dst: 'fd00:10:244:2::/64', peerIp: '198.18.0.2', port: 8285 },
        ]);
        await f.settled();
        let s = f.stats();
        expect(s.routes).toBe(3);
        expect(s.commandsApplied).toBe(s.commandsQueued);
        expect(s.commandsQueued).toBe(q0 + 4);
        expect(f.deleteRoute('10.244.3.0/24')).toBe(true);
        expect(f.deleteRoute('10.244.3.0/24')).toBe(false);
        expect(f.deleteRoute('10.244.9.0/24')).toBe(false);
        expect(() => f.deleteRoute('nope')).toThrow(
          new TypeError('dst must be an IPv4 or IPv6 CIDR such as 10.244.2.0/24, got "nope"'),
        );
        await f.settled();
        s = f.stats();
        expect(s.routes).toBe(2);
        expect(s.commandsApplied).toBe(q0 + 5);
        expect(f.routes().map((r) => r.dst)).toEqual(['10.244.2.0/24', 'fd00:10:244:2::/64']);
      } finally {
        closeAll();
      }
    });

    it('applies a thousand commands promptly', async () => {
      try {
        const f = start();
        for (let i = 0; i < 1000; i++) {
          f.setRoute(`10.${100 + (i >> 8)}.${i & 255}.0/24`, `198.18.${i >> 8}.${i & 255}`, 8285);
        }
        await f.settled(5000);
        expect(f.stats().routes).toBe(1000);
        expect(f.routes()).toHaveLength(1000);
      } finally {
        closeAll();
      }
    });

    it('replaces its own subnets in order with the routes, and validates them', async () => {
      try {
        const f = start();
        f.setLocalSubnets(['10.244.7.0/24']);
        f.setRoute('10.244.2.0/24', '198.18.0.2', 8285);
        await f.settled();
        expect(f.localSubnets()).toEqual(['10.244.7.0/24']);
        expect(() => f.setLocalSubnets(['10.244.7.0/24', 'x'])).toThrow(
          new TypeError('dst must be an IPv4 or IPv6 CIDR such as 10.244.2.0/24, got "x"'),
        );
        const many = Array.from({ length: 17 }, (_, i) => `10.${i}.0.0/16`);
        expect(() => f.setLocalSubnets(many)).toThrow(TypeError);
        expect(f.localSubnets()).toEqual(['10.244.7.0/24']);
        f.setLocalSubnets([]);
        await f.settled();
        expect(f.localSubnets()).toEqual([]);
      } finally {
        closeAll();
      }
    });

    it('reports a failed route insert: settled() rejects naming it, routes() leaves it out', async () => {
      try {
        const f = start({ maxRoutes: 2 });
        f.setRoute('10.244.2.0/24', '198.18.0.2', 8285);
        f.setRoute('fd00:10:244:2::/64', '198.18.0.2', 8285);
        f.setRoute('10.244.3.0/24', '198.18.0.3', 8285); // beyond the limit
        await expect(f.settled()).rejects.toMatchObject({
          code: 'E_NATIVE',
          details: { code: 'ENOSPC', routes: ['10.244.3.0/24'] },
        });
        let s = f.stats();
        expect(s.commandsFailed).toBe(1);
        expect(s.routes).toBe(2);
        expect(f.routes().map((r) => r.dst)).toEqual(['10.244.2.0/24', 'fd00:10:244:2::/64']);
        await f.settled(); // reported once
        // replacing an existing route still works at the limit; after a delete the new one fits
        f.setRoute('10.244.2.0/24', '198.18.0.4', 8285);
        expect(f.deleteRoute('fd00:10:244:2::/64')).toBe(true);
        f.setRoute('10.244.3.0/24', '198.18.0.3', 8285);
        await f.settled();
        s = f.stats();
        expect(s.commandsFailed).toBe(1);
        expect(s.routes).toBe(2);
        expect(f.routes().map((r) => r.dst)).toEqual(['10.244.2.0/24', '10.244.3.0/24']);
      } finally {
        closeAll();
      }
    });

    it('close is idempotent; afterwards commands fail with ESHUTDOWN and stats keep the counters', async () => {
      const f = start();
      const q0 = f.stats().commandsQueued;
      f.setRoute('10.244.2.0/24', '198.18.0.2', 8285);
      await f.settled();
      f.close();
      f.close();
      expect(f.closed).toBe(true);
      const s = f.stats();
      expect(s.running).toBe(false);
      expect(s.commandsApplied).toBe(q0 + 1);
      for (const op of [
        () => f.setRoute('10.244.3.0/24', '198.18.0.3', 8285),
        () => f.deleteRoute('10.244.2.0/24'),
      ]) {
        let err: unknown;
        try {
          op();
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(WeftError);
        expect((err as WeftError).code).toBe('E_NATIVE');
        expect((err as WeftError).details?.['code']).toBe('ESHUTDOWN');
      }
      await expect(f.settled()).rejects.toMatchObject({ code: 'E_NATIVE' });
      // validation still comes first, closed or not
      expect(() => f.setRoute('x', '198.18.0.2', 1)).toThrow(TypeError);
    });
  });
}
