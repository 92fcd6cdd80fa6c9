/**
 * One weftd per host: a second one started beside a running one (same network namespace, same
 * --state-dir) would program the same device, routes, rules and subnet.env, renew the same lease key
 * under its own store lease and fight the first over all of it. The lock is an abstract unix socket
 * named after the state dir: it lives in the network namespace (which is what weftd programs), needs no
 * file, and the kernel releases it when the process dies, however it dies (SIGKILL included).
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { WeftError } from '../errors.js';

/**
 * The state dir as the kernel finds it: symbolic links resolved (`/srv/weft` → `/var/lib/weft` is the same
 * dir, and two weftds on it must not both run), for a dir not created yet through its deepest existing
 * ancestor.
 */
function canonicalDir(stateDir: string): string {
  const abs = resolve(stateDir);
  for (let dir = abs, rest = ''; ; rest = join(basename(dir), rest), dir = dirname(dir)) {
    try {
      return join(realpathSync(dir), rest);
    } catch {
      if (dir === dirname(dir)) return abs;
    }
  }
}

/** Takes the lock for `stateDir` for the life of this process; throws E_ALREADY_RUNNING if held. */
export async function lockInstance(stateDir: string): Promise<void> {
  const dir = canonicalDir(stateDir);
  const hash = createHash('sha256').update(dir).digest('hex').slice(0, 32);
  // Nobody needs to talk to the lock: any local process may connect to an abstract socket, so each
  // connection is closed at once (an open one would hold one of weftd's descriptors for ever).
  const server = createServer((conn) => conn.destroy());
  await new Promise<void>((done, fail) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      fail(
        err.code === 'EADDRINUSE'
          ? new WeftError(
              'E_ALREADY_RUNNING',
              `another weftd already runs on this host with --state-dir ${dir}; stop it first (systemctl stop weftd) — two would fight over the same device, routes, rules and lease`,
            )
          : new WeftError('E_IO', `weftd instance lock: ${err.message}`, { cause: err }),
      ),
    );
    server.listen({ path: `\0weft/weftd/${hash}` }, () => done());
  });
  server.unref(); // held until the process exits; never keeps it alive
}
