/**
 * The CNI shim ↔ weftd framing (src/daemon/cni-wire.ts) with hostile bytes: wrong magic or version,
 * lengths over the limits, truncation, env entries without `=`, duplicate names, oversized exec results.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeExecResult,
  decodeRequest,
  encodeExec,
  encodeReply,
  encodeRequest,
  MAX_ENV_BYTES,
  MAX_WIRE_STDIN_BYTES,
  requestLength,
  WireError,
} from '../../../src/daemon/cni-wire.js';

const header = (magic: string, version: number, envLen: number, stdinLen: number): Buffer => {
  const b = Buffer.alloc(16);
  b.write(magic, 0, 'latin1');
  b.writeUInt32LE(version, 4);
  b.writeUInt32LE(envLen, 8);
  b.writeUInt32LE(stdinLen, 12);
  return b;
};

describe('CNI wire', () => {
  it('round-trips a request', () => {
    const req = encodeRequest(
      { CNI_COMMAND: 'ADD', PATH: '/bin:/usr/bin', EMPTY: '' },
      Buffer.from('{"a":1}'),
    );
    expect(requestLength(req)).toBe(req.length);
    const d = decodeRequest(req);
    expect({ ...d.env }).toEqual({ CNI_COMMAND: 'ADD', PATH: '/bin:/usr/bin', EMPTY: '' });
    expect(d.stdin.toString()).toBe('{"a":1}');
  });

  it('waits for a whole header, and rejects wrong magic, version and oversized lengths', () => {
    expect(requestLength(Buffer.from('WCNI'))).toBeUndefined();
    expect(() => requestLength(header('HTTP', 1, 0, 0))).toThrow(WireError);
    expect(() => requestLength(header('WCNI', 2, 0, 0))).toThrow(/wire version 2/);
    expect(() => requestLength(header('WCNI', 1, MAX_ENV_BYTES + 1, 0))).toThrow(/environment/);
    expect(() => requestLength(header('WCNI', 1, 0, MAX_WIRE_STDIN_BYTES + 1))).toThrow(/stdin/);
    expect(() => requestLength(header('WCNI', 1, 0xffffffff, 0xffffffff))).toThrow(WireError);
    expect(requestLength(header('WCNI', 1, 10, MAX_WIRE_STDIN_BYTES))).toBe(
      16 + 10 + MAX_WIRE_STDIN_BYTES,
    );
  });

  it('refuses a truncated request; keeps the first of duplicate names and skips entries without a name', () => {
    const req = encodeRequest({ A: '1' }, Buffer.from('xyz'));
    expect(() => decodeRequest(req.subarray(0, req.length - 1))).toThrow(/truncated/);
    const env = Buffer.from('X=1\0X=2\0=nokey\0novalue\0__proto__=p\0Y=a=b\0');
    const raw = Buffer.concat([header('WCNI', 1, env.length, 0), env]);
    const d = decodeRequest(raw);
    expect(Object.keys(d.env)).toEqual(['X', '__proto__', 'Y']);
    expect([d.env['X'], d.env['__proto__'], d.env['Y']]).toEqual(['1', 'p', 'a=b']);
    expect(Object.getPrototypeOf(d.env)).toBeNull();
  });

  it('exec frames and results: bounded, incomplete until whole, magic checked', () => {
    const f = encodeExec(
      '/usr/lib/cni/bridge',
      { CNI_COMMAND: 'ADD', 'BAD=K': 'x', NUL: 'a\0b' },
      Buffer.from('{}'),
      60_000,
    );
    expect(f.toString('latin1', 0, 4)).toBe('WCNX');
    expect(f.readUInt32LE(4)).toBe(60_000);
    expect(f.subarray(20).toString()).toBe('/usr/lib/cni/bridgeCNI_COMMAND=ADD\0{}');
    const res = Buffer.alloc(20 + 3);
    res.write('WCNE', 0, 'latin1');
    res.writeUInt32LE(0, 4);
    res.writeUInt32LE(0, 8);
    res.writeUInt32LE(3, 12);
    res.writeUInt32LE(1, 16);
    res.write('out', 20);
    expect(decodeExecResult(res.subarray(0, 22), 100)).toBeUndefined();
    expect(decodeExecResult(res, 100)).toMatchObject({
      bytes: 23,
      result: { kind: 0, value: 0, overflow: true },
    });
    expect(decodeExecResult(res, 100)!.result.stdout.toString()).toBe('out');
    expect(() => decodeExecResult(res, 2)).toThrow(/too large/);
    expect(() => decodeExecResult(Buffer.from('WCNRxxxx'), 100)).toThrow(/magic/);
  });

  it('encodes a reply header the shim reads', () => {
    const r = encodeReply(0, 1, Buffer.from('{"code":7}\n'), Buffer.from('log'));
    expect(r.toString('latin1', 0, 4)).toBe('WCNR');
    expect([r.readUInt32LE(4), r.readUInt32LE(8), r.readUInt32LE(12), r.readUInt32LE(16)]).toEqual([
      0, 1, 11, 3,
    ]);
    expect(r.subarray(20).toString()).toBe('{"code":7}\nlog');
  });
});
