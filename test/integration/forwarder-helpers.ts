/**
 * Helpers of the forwarder integration tests: a bit-exact TCP transfer between two container
 * namespaces (node processes inside them; sha256 of what was sent and what arrived).
 */
import { expect } from 'vitest';
import type { SimContainer } from '../helpers/netns.js';
import { nsRun, spawnTracked, stopChild, waitFor } from '../helpers/exec.js';

// Receives a byte stream on :5201, prints {sha, n} when the sender closes.
const SINK = `const net=require('net'),crypto=require('crypto');
const h=crypto.createHash('sha256');let n=0;
const srv=net.createServer(s=>{s.on('data',d=>{h.update(d);n+=d.length});s.on('end',()=>{console.log(JSON.stringify({sha:h.digest('hex'),n}));srv.close()})});
srv.listen(5201,'::',()=>console.log('ready'));`;
// Sends TOTAL bytes of an AES-CTR keystream (deterministic, incompressible) to HOST:5201.
const SOURCE = `const net=require('net'),crypto=require('crypto');
const total=Number(process.env.TOTAL);const c=crypto.createCipheriv('aes-128-ctr',Buffer.alloc(16,7),Buffer.alloc(16,0));
const h=crypto.createHash('sha256');const zero=Buffer.alloc(1<<20);let sent=0;
const s=net.connect(5201,process.env.HOST,()=>{const pump=()=>{while(sent<total){const k=Math.min(zero.length,total-sent);const chunk=c.update(zero.subarray(0,k));h.update(chunk);sent+=k;if(!s.write(chunk)){s.once('drain',pump);return}}s.end(()=>console.log(JSON.stringify({sha:h.digest('hex'),n:sent})))};pump()});
s.on('error',e=>{console.error(e.message);process.exit(1)});`;

export async function transfer(
  from: SimContainer,
  to: SimContainer,
  bytes: number,
  host = to.ip,
): Promise<{ sent: string; got: string }> {
  const sink = spawnTracked(process.execPath, ['-e', SINK], { ns: to.netns });
  try {
    let out = '';
    sink.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('tcp sink ready', () => out.includes('ready'), 10_000, 20);
    const src = await nsRun(from.netns, process.execPath, ['-e', SOURCE], {
      env: { ...process.env, TOTAL: String(bytes), HOST: host },
      timeoutMs: 120_000,
    });
    const sent = JSON.parse(src.stdout) as { sha: string; n: number };
    const got = await waitFor('sink result', () => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      return line ? (JSON.parse(line) as { sha: string; n: number }) : undefined;
    });
    expect(sent.n).toBe(bytes);
    expect(got.n).toBe(bytes);
    return { sent: sent.sha, got: got.sha };
  } finally {
    await stopChild(sink);
  }
}
