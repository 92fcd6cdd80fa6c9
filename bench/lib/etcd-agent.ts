/**
 * A tiny etcd writer that runs INSIDE the underlay namespace (where the bench's etcd listens; the bench
 * process itself lives in the root namespace and cannot reach it). It reads JSON lines on stdin and
 * answers one JSON line per request on stdout, with wall-clock timestamps (`performance.timeOrigin +
 * performance.now()`, comparable across processes on one machine):
 *   {"id":1,"put":[["key","value"], …],"concurrency":16}  →  {"id":1,"t0":<ms before the first put>,"t1":<ms after the last>}
 * Usage: node --import tsx bench/lib/etcd-agent.ts <endpoint>
 */
import { createInterface } from 'node:readline';
import { EtcdClient } from '../../src/subnet/etcd/client.js';

const now = (): number => performance.timeOrigin + performance.now();

interface Request {
  id: number;
  put: [string, string][];
  concurrency?: number;
}

const endpoint = process.argv[2];
if (!endpoint) {
  console.error('usage: etcd-agent <endpoint>');
  process.exit(2);
}
const client = new EtcdClient({ endpoints: [endpoint], requestTimeoutMs: 30_000 });
const rl = createInterface({ input: process.stdin });

rl.on('line', (line) => {
  void (async () => {
    let req: Request;
    try {
      req = JSON.parse(line) as Request;
    } catch {
      process.stdout.write(`${JSON.stringify({ id: -1, error: 'bad request' })}\n`);
      return;
    }
    try {
      const t0 = now();
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < req.put.length) {
          const [k, v] = req.put[next++]!;
          await client.kv.put({ key: k, value: v });
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, req.concurrency ?? 1) }, worker));
      process.stdout.write(`${JSON.stringify({ id: req.id, t0, t1: now() })}\n`);
    } catch (err) {
      process.stdout.write(`${JSON.stringify({ id: req.id, error: String(err) })}\n`);
    }
  })();
});
rl.on('close', () => client.close());
