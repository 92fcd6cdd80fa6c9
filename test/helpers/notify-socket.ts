/**
 * A real sd_notify receiver for tests (docs/systemd.md): python3 binds an AF_UNIX SOCK_DGRAM socket (a
 * path, or an abstract name written '@name' as systemd does) — Node cannot bind datagram unix sockets —
 * and reports each datagram with whether `watchFile` existed when it arrived.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnTracked, stopChild, waitFor } from './exec.js';

const RECEIVER = `
import json, os, socket, sys
addr, watch = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + addr[1:] if addr.startswith('@') else addr)
print(json.dumps({'listening': True}), flush=True)
while True:
    d = s.recv(65536).decode('utf-8', 'replace')
    print(json.dumps({'msg': d, 'watchExists': bool(watch) and os.path.exists(watch)}), flush=True)
`;

export interface NotifyMessage {
  /** The datagram, e.g. "READY=1\\nSTATUS=…". */
  readonly msg: string;
  /** Did the watched file exist when the datagram arrived? */
  readonly watchExists: boolean;
}

export interface NotifyReceiver {
  readonly address: string;
  readonly messages: NotifyMessage[];
  /** Waits for a datagram containing `line` (e.g. "READY=1"). */
  waitFor(line: string, timeoutMs?: number): Promise<NotifyMessage>;
  stop(): Promise<void>;
}

/** Binds `address` ('/path' or '@abstract'), optionally inside netns `ns`. */
export async function startNotifyReceiver(
  address: string,
  watchFile = '',
  ns?: string,
): Promise<NotifyReceiver> {
  const child: ChildProcess = spawnTracked(
    'python3',
    ['-u', '-c', RECEIVER, address, watchFile],
    ns ? { ns } : {},
  );
  const messages: NotifyMessage[] = [];
  let listening = false;
  let errText = '';
  let buf = '';
  child.stderr?.on('data', (b: Buffer) => (errText += b.toString()));
  child.stdout?.on('data', (b: Buffer) => {
    buf += b.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const o = JSON.parse(line) as { listening?: boolean } & NotifyMessage;
      if (o.listening) listening = true;
      else messages.push({ msg: o.msg, watchExists: o.watchExists });
    }
  });
  await waitFor(
    `the notify receiver on ${address}`,
    () => {
      if (child.exitCode !== null) throw new Error(`notify receiver exited: ${errText}`);
      return listening;
    },
    10_000,
    20,
  );
  const find = (line: string): NotifyMessage | undefined =>
    messages.find((m) => m.msg.split('\n').includes(line));
  return {
    address,
    messages,
    async waitFor(line, timeoutMs = 45_000) {
      await waitFor(`"${line}" on ${address}`, () => find(line) !== undefined, timeoutMs, 50);
      return find(line)!;
    },
    stop: () => stopChild(child, 1000),
  };
}
