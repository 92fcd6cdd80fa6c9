/**
 * The JSON form of etcd's messages (src/subnet/etcd/json-codec.ts, watch.ts): the NDJSON splitter over
 * chunks cut anywhere, base64 and int64 fields, and hostile answers rejected with a retryable E_ETCD_UNAVAILABLE (details.protocol)
 * naming the field instead of a crash further in.
 */
import { describe, expect, it } from 'vitest';
import { hasCode } from '../../../src/errors.js';
import {
  b64,
  b64Length,
  gatewayError,
  int64,
  keyValue,
  NdjsonSplitter,
  unb64,
} from '../../../src/subnet/etcd/json-codec.js';
import { decodeWatchResponse } from '../../../src/subnet/etcd/watch.js';

const lines = (objs: unknown[]): Buffer =>
  Buffer.from(objs.map((o) => `${JSON.stringify(o)}\n`).join(''));

describe('NDJSON splitter', () => {
  const msgs = [
    { result: { header: { revision: '5' }, created: true } },
    { result: { events: [{ kv: { key: b64('k'), value: b64('v€ü'), mod_revision: '6' } }] } },
    { error: { grpc_code: 14, message: 'etcdserver: no leader' } },
  ];
  const all = lines(msgs);

  it('yields the same messages however the stream is cut (every split point, one byte at a time)', () => {
    for (let cut = 0; cut <= all.length; cut++) {
      const s = new NdjsonSplitter();
      const got = [...s.push(all.subarray(0, cut)), ...s.push(all.subarray(cut)), ...s.end()];
      expect(got).toEqual(msgs);
    }
    const s = new NdjsonSplitter();
    const got: unknown[] = [];
    for (let i = 0; i < all.length; i++) got.push(...s.push(all.subarray(i, i + 1)));
    expect(got).toEqual(msgs); // multi-byte UTF-8 split across chunks survives
  });

  it('keeps a partial line until its newline, and takes a last line without one at the end', () => {
    const s = new NdjsonSplitter();
    expect(s.push(Buffer.from('{"a":1}\n{"b":'))).toEqual([{ a: 1 }]);
    expect(s.push(Buffer.from('2}'))).toEqual([]);
    expect(s.end()).toEqual([{ b: 2 }]);
    expect(s.end()).toEqual([]);
  });

  it('skips blank lines and CRLF', () => {
    const s = new NdjsonSplitter();
    expect(s.push(Buffer.from('\n\r\n{"a":1}\r\n\n'))).toEqual([{ a: 1 }]);
  });

  it('rejects a line that is not JSON with a protocol error and its start', () => {
    const s = new NdjsonSplitter();
    let err: unknown;
    try {
      s.push(Buffer.from('{"a":1}\n<html>502 Bad Gateway</html>\n'));
    } catch (e) {
      err = e;
    }
    expect(hasCode(err, 'E_ETCD_UNAVAILABLE')).toBe(true);
    expect(String(err)).toContain('<html>502');
    expect((err as { details?: Record<string, unknown> }).details?.['protocol']).toBe(true);
  });

  it('bounds a line: more than maxLineBytes without a newline fails instead of growing', () => {
    const s = new NdjsonSplitter(1024);
    s.push(Buffer.alloc(1000, 0x20));
    let err: unknown;
    try {
      s.push(Buffer.alloc(100, 0x20));
    } catch (e) {
      err = e;
    }
    expect(hasCode(err, 'E_ETCD_UNAVAILABLE')).toBe(true);
    expect((err as { details?: Record<string, unknown> }).details?.['tooLarge']).toBe(true);
  });
});

describe('etcd JSON fields', () => {
  it('base64 round trip for any bytes, and the decoded length without decoding', () => {
    const raw = Buffer.from([0, 255, 254, 10, 13, 0x80]);
    expect(unb64(b64(raw), 'v')).toEqual(raw);
    for (let n = 0; n < 8; n++) expect(b64Length(b64(Buffer.alloc(n)))).toBe(n);
    expect(unb64(undefined, 'v').length).toBe(0);
    for (const bad of ['abc', '!!!!', 12, {}])
      expect(
        hasCode(
          catchErr(() => unb64(bad, 'kv.value')),
          'E_ETCD_UNAVAILABLE',
        ),
      ).toBe(true);
    expect(String(catchErr(() => unb64('abc', 'kv.value')))).toContain('kv.value');
  });

  it('int64 fields stay decimal strings beyond 2^53, absent is 0, junk is refused', () => {
    expect(int64('9223372036854775807', 'x')).toBe('9223372036854775807');
    expect(int64('-1', 'x')).toBe('-1');
    expect(int64('007', 'x')).toBe('7');
    expect(int64(undefined, 'x')).toBe('0');
    expect(int64(42, 'x')).toBe('42');
    for (const bad of ['1e3', '0x10', '', 1.5, true, '99999999999999999999999'])
      expect(
        hasCode(
          catchErr(() => int64(bad, 'h.revision')),
          'E_ETCD_UNAVAILABLE',
        ),
      ).toBe(true);
  });

  it('a KeyValue with defaults left out, and an oversize value left undecoded', () => {
    const kv = keyValue({ key: b64('/a'), mod_revision: '3' }, 'kv');
    expect(kv.key.toString()).toBe('/a');
    expect(kv.value?.length).toBe(0);
    expect(kv.lease).toBe('0');
    const big = keyValue({ key: b64('/b'), value: b64(Buffer.alloc(5000)) }, 'kv', 4096);
    expect(big.value).toBeNull();
    expect(big.valueBytes).toBe(5000);
    for (const bad of [null, 'x', [], { key: 5 }, { key: b64('k'), lease: 'NaN' }])
      expect(
        hasCode(
          catchErr(() => keyValue(bad, 'kv')),
          'E_ETCD_UNAVAILABLE',
        ),
      ).toBe(bad === null ? false : true);
  });

  it('reads both of the gateway error shapes, and none from a normal answer', () => {
    expect(gatewayError({ error: 'etcdserver: x', message: 'etcdserver: x', code: 5 })).toEqual({
      message: 'etcdserver: x',
      grpcCode: 5,
    });
    expect(
      gatewayError({ error: { grpc_code: 14, http_code: 503, message: 'etcdserver: no leader' } }),
    ).toEqual({ message: 'etcdserver: no leader', grpcCode: 14 });
    expect(gatewayError({ result: {} })).toBeNull();
    expect(gatewayError('x')).toBeNull();
    expect(gatewayError(null)).toBeNull();
  });

  it('decodes watch results: PUT is the default type, compaction and cancel are reported', () => {
    const r = decodeWatchResponse({
      header: { revision: '9' },
      events: [
        { kv: { key: b64('a'), mod_revision: '8' } },
        { type: 'DELETE', kv: { key: b64('b') } },
      ],
    });
    expect(r.events.map((e) => e.type)).toEqual(['PUT', 'DELETE']);
    expect(r.header.revision).toBe('9');
    const c = decodeWatchResponse({ canceled: true, compact_revision: '4' });
    expect([c.canceled, c.compactRevision]).toEqual([true, '4']);
    expect(String(catchErr(() => decodeWatchResponse({ events: [{ type: 'EXPIRE' }] })))).toMatch(
      /type/,
    );
    expect(
      hasCode(
        catchErr(() => decodeWatchResponse({ events: {} })),
        'E_ETCD_UNAVAILABLE',
      ),
    ).toBe(true);
  });
});

function catchErr(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}
