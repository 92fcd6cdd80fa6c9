/**
 * The JSON form of etcd's v3 messages as its gRPC gateway speaks it (docs/dependencies.md §4): keys and
 * values are base64, int64 fields (revisions, lease IDs, TTLs, counts) are decimal strings, and fields at
 * their default value (0, false, empty, PUT) are left out. Streaming calls (watch, lease keepalive) answer
 * newline-delimited JSON objects, `{"result":…}` or `{"error":…}`, in chunks that split lines anywhere.
 *
 * Everything here is pure and checks shapes: a field of the wrong type is E_ETCD_UNAVAILABLE (retryable,
 * `details.protocol`) naming it,
 * never a crash further in. Keys and values stay Buffers (any bytes, hostile writers included).
 */
import { WeftError } from '../../errors.js';

/** A line longer than this ends the stream (details.tooLarge). */
export const MAX_LINE_BYTES = 64 << 20;

export function protocolError(message: string, details?: Record<string, unknown>): WeftError {
  return new WeftError('E_ETCD_UNAVAILABLE', `etcd answer: ${message}`, {
    retryable: true,
    details: { protocol: true, ...details },
  });
}

export const b64 = (v: string | Uint8Array): string =>
  (typeof v === 'string'
    ? Buffer.from(v)
    : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  ).toString('base64');

/** The `key` and, when given, `range_end` of a request body (a range, a delete, a watch). */
export const keyRange = (
  key: string | Uint8Array,
  rangeEnd?: string | Uint8Array,
): { key: string; range_end?: string } =>
  rangeEnd === undefined ? { key: b64(key) } : { key: b64(key), range_end: b64(rangeEnd) };

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes a base64 field ('' or absent is empty). */
export function unb64(v: unknown, field: string): Buffer {
  if (v === undefined || v === null || v === '') return Buffer.alloc(0);
  if (typeof v !== 'string' || v.length % 4 !== 0 || !B64.test(v))
    throw protocolError(`${field} is not base64`);
  return Buffer.from(v, 'base64');
}

/** The decoded length of a base64 field, without decoding it. */
export function b64Length(v: unknown): number {
  if (typeof v !== 'string' || v.length === 0) return 0;
  const pad = v.endsWith('==') ? 2 : v.endsWith('=') ? 1 : 0;
  return (v.length / 4) * 3 - pad;
}

const INT64 = /^-?\d{1,20}$/;

/** An int64 field as its decimal string ('0' when absent). */
export function int64(v: unknown, field: string): string {
  if (v === undefined || v === null) return '0';
  if (typeof v === 'string' && INT64.test(v)) return v.replace(/^(-?)0+(?=\d)/, '$1');
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  throw protocolError(`${field} is not an int64 (${typeof v})`);
}

/** A reader of one JSON type: absent (or null) is `empty()`, another type a protocol error. */
function typed<T>(type: 'boolean' | 'object' | 'array' | 'string', what: string, empty: () => T) {
  return (v: unknown, field: string): T => {
    if (v === undefined || v === null) return empty();
    if (type === 'array' ? !Array.isArray(v) : typeof v !== type || Array.isArray(v))
      throw protocolError(`${field} is not ${what}`);
    return v as T;
  };
}

export const bool = typed('boolean', 'a boolean', () => false);
export const obj = typed<Record<string, unknown>>('object', 'an object', () => ({}));
export const arr = typed<unknown[]>('array', 'an array', () => []);
export const str = typed('string', 'a string', () => '');

export interface ResponseHeader {
  readonly revision: string;
  readonly memberId: string;
}

export function header(v: unknown): ResponseHeader {
  const h = obj(v, 'header');
  return {
    revision: int64(h['revision'], 'header.revision'),
    memberId: int64(h['member_id'], 'header.member_id'),
  };
}

export interface KeyValue {
  readonly key: Buffer;
  /** The value, or null when it is longer than the caller's bound (it is then never decoded). */
  readonly value: Buffer | null;
  readonly valueBytes: number;
  readonly createRevision: string;
  readonly modRevision: string;
  readonly version: string;
  /** '0' when the key has no lease. */
  readonly lease: string;
}

/** Decodes a KeyValue; a value longer than `maxValueBytes` is left undecoded (`value: null`). */
export function keyValue(v: unknown, field: string, maxValueBytes = Infinity): KeyValue {
  const kv = obj(v, field);
  const valueBytes = b64Length(kv['value']);
  return {
    key: unb64(kv['key'], `${field}.key`),
    value: valueBytes > maxValueBytes ? null : unb64(kv['value'], `${field}.value`),
    valueBytes,
    createRevision: int64(kv['create_revision'], `${field}.create_revision`),
    modRevision: int64(kv['mod_revision'], `${field}.mod_revision`),
    version: int64(kv['version'], `${field}.version`),
    lease: int64(kv['lease'], `${field}.lease`),
  };
}

/**
 * The error an etcd gateway answer carries: unary answers `{"error","message","code"}`, streams
 * `{"error":{"grpc_code","http_code","message","http_status"}}`. Returns null when there is none.
 */
export function gatewayError(v: unknown): { message: string; grpcCode: number } | null {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  const e = o['error'];
  if (e === undefined || e === null || e === '') return null;
  const stream = typeof e === 'object';
  const fields = (stream ? e : o) as Record<string, unknown>;
  const message = fields['message'];
  const code = fields[stream ? 'grpc_code' : 'code'];
  return {
    message:
      typeof message === 'string'
        ? message
        : (stream ? JSON.stringify(e) : String(e)).slice(0, 200),
    grpcCode: typeof code === 'number' ? code : 2,
  };
}

/** JSON.parse that reports a protocol error (with the start of the text) instead of a SyntaxError. */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw protocolError(
      `${what} is not JSON (${(err as Error).message}): ${JSON.stringify(text.slice(0, 80))}`,
    );
  }
}

/**
 * Splits a byte stream into newline-delimited JSON objects. Chunks may cut lines (and UTF-8 sequences)
 * anywhere; blank lines are skipped. A line longer than `maxLineBytes` throws a protocol error
 * (details.tooLarge) instead of buffering without bound.
 */
export class NdjsonSplitter {
  private parts: Buffer[] = [];
  private pending = 0;

  constructor(private readonly maxLineBytes = MAX_LINE_BYTES) {}

  /** Feeds one chunk; returns the objects completed by it, in order. */
  push(chunk: Buffer): unknown[] {
    const out: unknown[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl);
      this.check(piece.length);
      start = nl + 1;
      out.push(...this.line(piece));
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.check(rest.length);
      this.parts.push(Buffer.from(rest));
      this.pending += rest.length;
    }
    return out;
  }

  /** The stream ended: a last line without a newline is still a message. */
  end(): unknown[] {
    return this.pending === 0 ? [] : this.line(Buffer.alloc(0));
  }

  /** The message of the pending parts and `last` (none for a blank line); empties the parts. */
  private line(last: Buffer): unknown[] {
    const line =
      this.parts.length === 0
        ? last
        : Buffer.concat([...this.parts, last], this.pending + last.length);
    this.parts = [];
    this.pending = 0;
    const text = line.toString('utf8').trim();
    return text === '' ? [] : [parseJson(text, 'stream message')];
  }

  private check(more: number): void {
    if (this.pending + more > this.maxLineBytes) {
      this.parts = [];
      this.pending = 0;
      throw protocolError(`a stream message is longer than ${this.maxLineBytes} bytes`, {
        tooLarge: true,
      });
    }
  }
}
