/**
 * etcd's KV service over the JSON gateway (`/v3/kv/range`, `/put`, `/txn`): request
 * bodies in the gateway's JSON form, answers decoded and shape-checked (json-codec.ts).
 */
import {
  arr,
  b64,
  bool,
  header,
  int64,
  keyRange,
  keyValue,
  obj,
  type KeyValue,
  type ResponseHeader,
} from './json-codec.js';
import type { CallOptions, HttpTransport } from './http-transport.js';

export type Bytes = string | Uint8Array;

export interface RangeRequest {
  readonly key: Bytes;
  /** The end of the range (exclusive); absent = the one key. */
  readonly rangeEnd?: Bytes;
  readonly limit?: number;
  /** Read at this store revision (a consistent snapshot across pages). */
  readonly revision?: string;
}

export interface RangeResponse {
  readonly header: ResponseHeader;
  readonly kvs: readonly KeyValue[];
  readonly more: boolean;
  readonly count: string;
}

export interface PutRequest {
  readonly key: Bytes;
  readonly value: Bytes;
  /** Lease ID ('0' or absent: none). */
  readonly lease?: string;
}

export interface DeleteRangeRequest {
  readonly key: Bytes;
  readonly rangeEnd?: Bytes;
}

export interface Compare {
  readonly key: Bytes;
  readonly target: 'CREATE' | 'MOD';
  readonly result: 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL';
  /** The revision compared with (decimal). */
  readonly value: string;
}

export type TxnOp =
  | { readonly range: RangeRequest }
  | { readonly put: PutRequest }
  | { readonly deleteRange: DeleteRangeRequest };

export interface TxnRequest {
  readonly compare: readonly Compare[];
  readonly success: readonly TxnOp[];
  readonly failure?: readonly TxnOp[];
}

export interface TxnResponse {
  readonly header: ResponseHeader;
  readonly succeeded: boolean;
  /** One per op of the branch taken; `range` is set for range ops. */
  readonly responses: readonly { readonly range?: RangeResponse }[];
}

/** Decode bound for values (longer ones come back as `value: null`, see KeyValue). */
export interface DecodeOptions {
  readonly maxValueBytes?: number;
}

const TARGET_FIELD = { CREATE: 'create_revision', MOD: 'mod_revision' } as const;

function rangeBody(r: RangeRequest): Record<string, unknown> {
  return {
    ...keyRange(r.key, r.rangeEnd),
    ...(r.limit !== undefined ? { limit: String(r.limit) } : {}),
    ...(r.revision !== undefined ? { revision: r.revision } : {}),
  };
}

function putBody(p: PutRequest): Record<string, unknown> {
  return {
    key: b64(p.key),
    value: b64(p.value),
    ...(p.lease !== undefined && p.lease !== '0' ? { lease: p.lease } : {}),
  };
}

function opBody(op: TxnOp): Record<string, unknown> {
  if ('range' in op) return { request_range: rangeBody(op.range) };
  if ('put' in op) return { request_put: putBody(op.put) };
  return { request_delete_range: keyRange(op.deleteRange.key, op.deleteRange.rangeEnd) };
}

export function decodeRange(v: unknown, field: string, o: DecodeOptions): RangeResponse {
  const r = obj(v, field);
  return {
    header: header(r['header']),
    kvs: arr(r['kvs'], `${field}.kvs`).map((kv, i) =>
      keyValue(kv, `${field}.kvs[${i}]`, o.maxValueBytes),
    ),
    more: bool(r['more'], `${field}.more`),
    count: int64(r['count'], `${field}.count`),
  };
}

export class Kv {
  constructor(private readonly t: HttpTransport) {}

  async range(r: RangeRequest, o: DecodeOptions & CallOptions = {}): Promise<RangeResponse> {
    return decodeRange(await this.t.unary('/v3/kv/range', rangeBody(r), o), 'range', o);
  }

  async put(p: PutRequest, o: CallOptions = {}): Promise<{ header: ResponseHeader }> {
    const r = obj(await this.t.unary('/v3/kv/put', putBody(p), o), 'put');
    return { header: header(r['header']) };
  }

  async txn(t: TxnRequest, o: DecodeOptions & CallOptions = {}): Promise<TxnResponse> {
    const body = {
      compare: t.compare.map((c) => ({
        key: b64(c.key),
        target: c.target,
        result: c.result,
        [TARGET_FIELD[c.target]]: c.value,
      })),
      success: t.success.map(opBody),
      failure: (t.failure ?? []).map(opBody),
    };
    const r = obj(await this.t.unary('/v3/kv/txn', body, o), 'txn');
    return {
      header: header(r['header']),
      succeeded: bool(r['succeeded'], 'txn.succeeded'),
      responses: arr(r['responses'], 'txn.responses').map((x, i) => {
        const op = obj(x, `txn.responses[${i}]`);
        return op['response_range'] !== undefined
          ? { range: decodeRange(op['response_range'], `txn.responses[${i}].response_range`, o) }
          : {};
      }),
    };
  }
}
