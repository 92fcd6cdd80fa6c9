/**
 * etcd's Lease service over the JSON gateway. Lease IDs are int64 decimal strings. A keepalive is one
 * request on the gateway's keepalive stream (`/v3/lease/keepalive`): the body carries one
 * LeaseKeepAliveRequest, the gateway ends the stream after etcd's one answer, so it is a unary call with
 * the same deadline, failover and token handling as every other. No timers live here: nothing keeps a
 * process alive after close().
 */
import { arr, header, int64, obj } from './json-codec.js';
import { EtcdRequestError, GRPC, type CallOptions, type HttpTransport } from './http-transport.js';

export class Lease {
  constructor(private readonly t: HttpTransport) {}

  /** Grants a lease of `ttlSeconds`; returns its ID. */
  async grant(ttlSeconds: number, o: CallOptions = {}): Promise<string> {
    const r = obj(await this.t.unary('/v3/lease/grant', { TTL: String(ttlSeconds) }, o), 'grant');
    const e = r['error'];
    if (typeof e === 'string' && e !== '')
      throw new EtcdRequestError(e, { grpcCode: GRPC.FAILED_PRECONDITION });
    const id = int64(r['ID'], 'grant.ID');
    if (id === '0')
      throw new EtcdRequestError('grant: etcd answered without a lease ID', { grpcCode: 2 });
    return id;
  }

  /** Renews the lease; returns its new TTL in seconds, 0 when it no longer exists. */
  async keepAlive(id: string, o: CallOptions = {}): Promise<number> {
    const msgs = (await this.t.unary(
      '/v3/lease/keepalive',
      { ID: id },
      { ...o, ndjson: true },
    )) as unknown[];
    const res = obj(obj(msgs[0], 'keepalive')['result'], 'keepalive.result');
    return Math.max(0, Number(int64(res['TTL'], 'keepalive.TTL')));
  }

  /** The remaining TTL in seconds; -1 when the lease does not exist (expired or revoked). */
  async timeToLive(id: string, o: CallOptions = {}): Promise<{ ttl: number; keys: Buffer[] }> {
    const r = obj(await this.t.unary('/v3/lease/timetolive', { ID: id }, o), 'timetolive');
    header(r['header']);
    return {
      ttl: Number(int64(r['TTL'], 'timetolive.TTL')),
      keys: arr(r['keys'], 'timetolive.keys').map((k) =>
        Buffer.from(typeof k === 'string' ? k : '', 'base64'),
      ),
    };
  }

  async revoke(id: string, o: CallOptions = {}): Promise<void> {
    await this.t.unary('/v3/lease/revoke', { ID: id }, o);
  }
}
