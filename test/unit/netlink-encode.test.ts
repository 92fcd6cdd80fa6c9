import { describe, expect, it } from 'vitest';
import {
  encodeGeneral,
  encodeInto,
  MAX_MESSAGE_BYTES,
  NLM_F_ACK,
  setAck,
} from '../../src/netlink/encode.js';
import type { Mutation } from '../../src/netlink/ops.js';
import { canonicalMacInto, tryParseIp4 } from '../../src/ip/index.js';

/**
 * The encoder writes straight into the datagram buffer. These byte strings are what the previous
 * encoder (one Buffer per message, attribute list) produced for the same mutations, seq and port 0,
 * NLM_F_ACK set: the kernel gets exactly the same messages.
 */
const REFERENCE: [Mutation, string][] = [
  [
    {
      op: 'routeReplace',
      route: { dst: '10.5.2.0/24', gateway: '10.5.2.0', oif: 7, onlink: true },
    },
    '3400000018000505000000000000000002180000fe04000104000000080001000a050200080005000a0502000800040007000000',
  ],
  [
    { op: 'routeDelete', route: { dst: '10.5.2.0/24', gateway: '10.5.2.0', oif: 7, onlink: true } },
    '3400000019000500000000000000000002180000fe00ff0000000000080001000a050200080005000a0502000800040007000000',
  ],
  [
    { op: 'routeReplace', route: { dst: '10.44.1.0/24', oif: 3 } },
    '2c00000018000505000000000000000002180000fe04fd0100000000080001000a2c01000800040003000000',
  ],
  [
    {
      op: 'routeReplace',
      route: { dst: 'fd05:0:0:2::/64', gateway: 'fd05:0:0:2::', oif: 9, onlink: true, table: 1000 },
    },
    '540000001800050500000000000000000a400000000400010400000014000100fd05000000000002000000000000000008000f00e803000014000500fd0500000000000200000000000000000800040009000000',
  ],
  [
    {
      op: 'routeReplace',
      route: { dst: '10.6.0.0/16', gateway: '198.18.0.2', oif: 2, table: 100 },
    },
    '34000000180005050000000000000000021000006404000100000000080001000a06000008000500c61200020800040002000000',
  ],
  [
    { op: 'neighReplace', neigh: { ifindex: 7, dst: '10.5.2.0', mac: '0e:42:00:00:01:ff' } },
    '300000001c0005050000000000000000020000000700000080000000080001000a0502000a0002000e42000001ff0000',
  ],
  [
    { op: 'neighReplace', neigh: { ifindex: 7, dst: 'fd05:0:0:2::', mac: '0E-42-00-00-01-FF' } },
    '3c0000001c00050500000000000000000a000000070000008000000014000100fd0500000000000200000000000000000a0002000e42000001ff0000',
  ],
  [
    { op: 'neighDelete', neigh: { ifindex: 7, dst: '10.5.2.0' } },
    '240000001d0005000000000000000000020000000700000000000000080001000a050200',
  ],
  [
    { op: 'fdbReplace', fdb: { ifindex: 7, mac: '0e:42:00:00:01:ff', dst: '198.18.1.5' } },
    '300000001c00050500000000000000000700000007000000800002000a0002000e42000001ff000008000100c6120105',
  ],
  [
    { op: 'fdbDelete', fdb: { ifindex: 7, mac: '0e:42:00:00:01:ff', dst: 'fd00::5' } },
    '3c0000001d00050000000000000000000700000007000000000002000a0002000e42000001ff000014000100fd000000000000000000000000000005',
  ],
];

describe('netlink encoder', () => {
  it.each(REFERENCE)('%j encodes like the reference', (m, hex) => {
    const b = Buffer.alloc(MAX_MESSAGE_BYTES + 8, 0xaa);
    const end = encodeInto(b, 4, m, 0, 0, true);
    expect(b.subarray(4, end).toString('hex')).toBe(hex);
    expect(end - 4).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
  });

  it('writes seq and port, asks for an ACK only when told, and can flip it', () => {
    const b = Buffer.alloc(MAX_MESSAGE_BYTES);
    const m: Mutation = { op: 'neighDelete', neigh: { ifindex: 7, dst: '10.5.2.0' } };
    encodeInto(b, 0, m, 0x40000001, 4242, false);
    expect(b.readUInt32LE(8)).toBe(0x40000001);
    expect(b.readUInt32LE(12)).toBe(4242);
    expect(b.readUInt16LE(6) & NLM_F_ACK).toBe(0);
    setAck(b, 0, true);
    expect(b.readUInt16LE(6) & NLM_F_ACK).toBe(NLM_F_ACK);
    setAck(b, 0, false);
    expect(b.readUInt16LE(6) & NLM_F_ACK).toBe(0);
  });

  // The template path (IPv4 neighbour, FDB entry and gateway route in canonical text) against the
  // general encoders, byte for byte, with and without ACK, seq and port; and the inputs it must hand
  // to the general path (non-canonical text, IPv6, other tables, no gateway or oif).
  const variants: Mutation[] = [];
  for (const [ifindex, i] of [
    [1, 0],
    [7, 255],
    [0x01020304, 4095],
  ] as const) {
    const gw = `10.${i >> 8}.${i & 255}.0`;
    const hex2 = (v: number): string => v.toString(16).padStart(2, '0');
    const mac = `0e:42:a${i & 7}:${hex2(i >> 8)}:${hex2(i & 255)}:ff`;
    variants.push(
      { op: 'neighReplace', neigh: { ifindex, dst: gw, mac } },
      { op: 'fdbReplace', fdb: { ifindex, mac, dst: `198.18.${i >> 8}.${i & 255}` } },
      { op: 'routeReplace', route: { dst: `${gw}/24`, gateway: gw, oif: ifindex, onlink: true } },
      { op: 'routeReplace', route: { dst: `${gw}/8`, gateway: '198.18.0.2', oif: ifindex } },
      { op: 'routeReplace', route: { dst: `${gw}/32`, gateway: gw, oif: ifindex, table: 254 } },
    );
  }
  variants.push(
    { op: 'neighReplace', neigh: { ifindex: 3, dst: '10.5.2.0', mac: '0E:42:00:00:01:FF' } },
    { op: 'neighReplace', neigh: { ifindex: 3, dst: 'fd05::', mac: '0e:42:00:00:01:ff' } },
    { op: 'fdbReplace', fdb: { ifindex: 3, mac: '0e-42-00-00-01-ff', dst: '198.18.1.5' } },
    { op: 'fdbReplace', fdb: { ifindex: 3, mac: '0e:42:00:00:01:ff', dst: 'fd00::5' } },
    { op: 'routeReplace', route: { dst: '10.5.2.0/08', gateway: '10.5.2.0', oif: 3 } },
    { op: 'routeReplace', route: { dst: '10.5.2.0/24', gateway: '10.5.2.0', oif: 3, table: 100 } },
    { op: 'routeReplace', route: { dst: '10.5.2.0/24', oif: 3 } },
    { op: 'routeReplace', route: { dst: '10.5.2.0/24', gateway: '10.5.2.0' } },
    { op: 'routeReplace', route: { dst: 'fd05::/64', gateway: 'fd05::', oif: 3 } },
    { op: 'routeDelete', route: { dst: '10.5.2.0/24', gateway: '10.5.2.0', oif: 3 } },
    { op: 'neighDelete', neigh: { ifindex: 3, dst: '10.5.2.0' } },
  );
  it.each(variants)('%j: the template path writes what the general encoders write', (m) => {
    for (const [seq, port, ack] of [
      [0, 0, false],
      [0x40000001, 4242, true],
    ] as const) {
      const fast = Buffer.alloc(MAX_MESSAGE_BYTES + 8, 0xaa);
      const general = Buffer.alloc(MAX_MESSAGE_BYTES + 8, 0x55);
      const end = encodeInto(fast, 4, m, seq, port, ack);
      expect(end).toBe(encodeGeneral(general, 4, m, seq, port, ack));
      expect(fast.subarray(4, end).toString('hex')).toBe(general.subarray(4, end).toString('hex'));
    }
  });

  it('a stream of peers (gateway and MAC texts repeated, then changed) encodes like the general path', () => {
    const peer = (gw: string, mac: string, pub: string, dst = `${gw}/24`): Mutation[] => [
      { op: 'neighReplace', neigh: { ifindex: 5, dst: gw, mac } },
      { op: 'fdbReplace', fdb: { ifindex: 5, mac, dst: pub } },
      { op: 'routeReplace', route: { dst, gateway: gw, oif: 5, onlink: true } },
    ];
    const stream = [
      ...peer('10.5.2.0', '0e:42:00:00:01:ff', '198.18.1.5'),
      ...peer('10.5.2.0', '0e:42:00:00:01:fe', '198.18.1.6'),
      ...peer('10.5.3.0', '0e:42:00:00:01:fe', '198.18.1.6', '10.5.30.0/24'),
      ...peer('10.5.30.0', '0e:42:00:00:01:fd', '198.18.1.7', '10.5.3.0/24'),
      ...peer('10.5.4.0', '0E:42:00:00:01:FD', '198.18.1.8'),
      ...peer('10.5.4.0', '0e:42:00:00:01:fd', '198.18.1.8', '10.5.4.0/3'),
    ];
    const fast = Buffer.alloc(stream.length * MAX_MESSAGE_BYTES, 0xaa);
    const general = Buffer.alloc(stream.length * MAX_MESSAGE_BYTES, 0x55);
    let a = 0;
    let g = 0;
    for (const m of stream) {
      a = encodeInto(fast, a, m, 0, 0, false);
      g = encodeGeneral(general, g, m, 0, 0, false);
      expect(a).toBe(g);
    }
    expect(fast.subarray(0, a).toString('hex')).toBe(general.subarray(0, g).toString('hex'));
  });

  it('texts the planner parsed just before (the memos of the parsers) encode like the general path', () => {
    // The planner parses a peer's subnet address, public IP and VTEP MAC (tryParseIp4 and
    // canonicalMacInto remember the last ones), then the encoder meets the same texts as other string
    // objects, beside rejected texts and texts of other peers.
    const fast = Buffer.alloc(MAX_MESSAGE_BYTES, 0xaa);
    const general = Buffer.alloc(MAX_MESSAGE_BYTES, 0x55);
    const scratch = new Uint8Array(6);
    for (let i = 0; i < 64; i++) {
      const subnet = `10.${5 + (i & 3)}.${i}.0/24`;
      const gw = subnet.slice(0, subnet.indexOf('/'));
      const pub = `198.18.${i & 7}.${i}`;
      const mac = `0e:42:00:00:0${i & 3}:${(16 + i).toString(16)}`;
      if (i % 3 !== 0) expect(tryParseIp4(`${gw}/24`.slice(0, gw.length))).not.toBeNull();
      if (i % 4 !== 0) expect(tryParseIp4(pub)).not.toBeNull();
      if (i % 5 === 0) expect(tryParseIp4('10.05.1.0')).toBeNull();
      if (i % 2 === 0) expect(canonicalMacInto(mac, scratch, 0)).toBe(true);
      if (i % 7 === 0) expect(canonicalMacInto('0E:42:00:00:00:10', scratch, 0)).toBe(false);
      const peer: Mutation[] = [
        { op: 'neighReplace', neigh: { ifindex: 5, dst: gw, mac } },
        { op: 'fdbReplace', fdb: { ifindex: 5, mac, dst: pub } },
        { op: 'routeReplace', route: { dst: subnet, gateway: gw, oif: 5, onlink: true } },
      ];
      for (const m of peer) {
        const end = encodeInto(fast, 0, m, 0, 0, false);
        expect(end).toBe(encodeGeneral(general, 0, m, 0, 0, false));
        expect(fast.subarray(0, end).toString('hex')).toBe(
          general.subarray(0, end).toString('hex'),
        );
      }
    }
  });

  it.each([
    { op: 'routeReplace', route: { dst: 'not-a-cidr', oif: 1 } },
    { op: 'routeReplace', route: { dst: '10.5.2.0/33', oif: 1 } },
    { op: 'routeReplace', route: { dst: '010.5.2.0/24', oif: 1 } },
    { op: 'routeReplace', route: { dst: '10.5.2.0/24', gateway: '10.5.2.256', oif: 1 } },
    { op: 'neighReplace', neigh: { ifindex: 1, dst: '10.5.2.0', mac: '0e:42:00:00:01' } },
    { op: 'neighReplace', neigh: { ifindex: 1, dst: '10.5.2', mac: '0e:42:00:00:01:ff' } },
    { op: 'fdbReplace', fdb: { ifindex: 1, mac: 'zz:42:00:00:01:ff', dst: '198.18.1.5' } },
    { op: 'routeReplace', route: { dst: '10.5.2.0/33', gateway: '10.5.2.0', oif: 1 } },
    { op: 'routeReplace', route: { dst: '10.5.2.0/2x', gateway: '10.5.2.0', oif: 1 } },
    { op: 'routeReplace', route: { dst: '10.5.2.0/24', gateway: '10.5.02.0', oif: 1 } },
    { op: 'neighReplace', neigh: { ifindex: 1, dst: '10.5.2.0', mac: '0e:42:00:00:01:fg' } },
  ] as Mutation[])('rejects malformed input %j with a TypeError', (m) => {
    expect(() => encodeInto(Buffer.alloc(MAX_MESSAGE_BYTES), 0, m, 1, 1, true)).toThrow(TypeError);
  });
});
