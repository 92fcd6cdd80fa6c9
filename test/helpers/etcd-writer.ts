/**
 * A raw etcd writer for tests (other hosts' writes, hostile values, leases held by nobody): weft's own
 * etcd client (src/subnet/etcd/client.ts) without the registry's layout or bounds.
 */
import { EtcdClient } from '../../src/subnet/etcd/client.js';
import type { Bytes } from '../../src/subnet/etcd/kv.js';

export interface EtcdWriter {
  put(key: Bytes, value: Bytes, lease?: string): Promise<void>;
  /** The value as a string, null when the key is absent. */
  get(key: Bytes): Promise<string | null>;
  /** Puts all in one transaction (one revision, one watch response). */
  putAll(puts: readonly { key: Bytes; value: Bytes; lease?: string }[]): Promise<void>;
  grant(ttlSeconds: number): Promise<string>;
  revoke(id: string): Promise<void>;
  readonly client: EtcdClient;
  close(): void;
}

export function etcdWriter(endpoints: readonly string[], requestTimeoutMs = 10_000): EtcdWriter {
  const client = new EtcdClient({ endpoints, requestTimeoutMs });
  return {
    client,
    async put(key, value, lease) {
      await client.kv.put({ key, value, ...(lease !== undefined ? { lease } : {}) });
    },
    async get(key) {
      const r = await client.kv.range({ key });
      return r.kvs[0]?.value?.toString() ?? null;
    },
    async putAll(puts) {
      await client.kv.txn({ compare: [], success: puts.map((put) => ({ put })) });
    },
    grant: (ttl) => client.lease.grant(ttl),
    revoke: (id) => client.lease.revoke(id),
    close: () => client.close(),
  };
}
