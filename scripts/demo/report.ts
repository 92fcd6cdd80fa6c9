/**
 * What the demo shows once the cluster runs: the leases in etcd, a container-to-container ping matrix,
 * and a short iperf3 TCP figure between containers on two different hosts.
 */
import { spawn } from 'node:child_process';
import { ETCD_PREFIX, HOSTS, type Layout } from './layout.js';
import { etcdctl } from './cluster.js';
import type { DemoContainer } from './containers.js';
import { nsRun, pool, sleep } from './shell.js';

export interface LeaseRow {
  subnet: string;
  publicIp: string;
  backend: string;
  detail: string;
}

/** Leases under `<prefix>/subnets/` (flannel layout: key `10.244.5.0-24`, value JSON). */
export async function readLeases(l: Layout): Promise<LeaseRow[]> {
  const out = await etcdctl(l, ['get', '--prefix', `${ETCD_PREFIX}/subnets/`]);
  const lines = out.split('\n').filter((s) => s !== '');
  const rows: LeaseRow[] = [];
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const key = lines[i] ?? '';
    const m = /\/subnets\/(\d+\.\d+\.\d+\.\d+)-(\d+)$/.exec(key);
    if (!m) continue;
    let v: { PublicIP?: unknown; BackendType?: unknown; BackendData?: unknown } = {};
    try {
      v = JSON.parse(lines[i + 1] ?? '') as typeof v;
    } catch {
      /* shown as unknown below */
    }
    const data = v.BackendData && typeof v.BackendData === 'object' ? v.BackendData : {};
    const mac = (data as { VtepMAC?: unknown }).VtepMAC;
    const pub = (data as { PublicKey?: unknown }).PublicKey;
    rows.push({
      subnet: `${m[1]}/${m[2]}`,
      publicIp: typeof v.PublicIP === 'string' ? v.PublicIP : '?',
      backend: typeof v.BackendType === 'string' ? v.BackendType : '(none)', // flannel's udp writes none
      detail:
        typeof mac === 'string'
          ? `VtepMAC ${mac}`
          : typeof pub === 'string'
            ? `PublicKey ${pub}`
            : '',
    });
  }
  return rows.sort((a, b) => a.publicIp.localeCompare(b.publicIp));
}

export function formatLeases(l: Layout, rows: readonly LeaseRow[]): string {
  const hostOf = (ipAddr: string): string => {
    for (let i = 1; i <= HOSTS; i++) if (l.hostIp(i) === ipAddr) return l.hostNs(i);
    return '?';
  };
  return rows
    .map(
      (r) =>
        `  ${r.subnet.padEnd(16)} ${hostOf(r.publicIp).padEnd(16)} ${r.publicIp.padEnd(12)} ${r.backend.padEnd(8)} ${r.detail}`,
    )
    .join('\n');
}

export interface Matrix {
  readonly containers: readonly DemoContainer[];
  /** ok[i][j]: container i reached container j (true on the diagonal). */
  readonly ok: readonly (readonly boolean[])[];
  readonly pairs: number;
  readonly passed: number;
}

async function pingOk(from: DemoContainer, to: DemoContainer): Promise<boolean> {
  const r = await nsRun(from.netns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', '-q', to.ip], {
    allowFail: true,
    timeoutMs: 10_000,
  });
  return r.code === 0;
}

export async function pingMatrix(cs: readonly DemoContainer[]): Promise<Matrix> {
  const jobs: (() => Promise<boolean>)[] = [];
  for (const a of cs)
    for (const b of cs) jobs.push(() => (a === b ? Promise.resolve(true) : pingOk(a, b)));
  const flat = await pool(8, jobs);
  const ok = cs.map((_, i) => flat.slice(i * cs.length, (i + 1) * cs.length));
  const pairs = cs.length * (cs.length - 1);
  const passed = ok.reduce((n, row, i) => n + row.filter((v, j) => v && i !== j).length, 0);
  return { containers: cs, ok, pairs, passed };
}

export function formatMatrix(m: Matrix): string {
  const label = (c: DemoContainer): string => `${c.name} ${c.ip}`;
  const w = Math.max(...m.containers.map((c) => label(c).length)) + 1;
  const head = ''.padEnd(w) + m.containers.map((c) => c.name.padStart(7)).join('');
  const rows = m.containers.map(
    (a, i) =>
      label(a).padEnd(w) +
      m.containers
        .map((_, j) => (i === j ? '—' : m.ok[i]?.[j] ? 'OK' : 'FAIL').padStart(7))
        .join(''),
  );
  const verdict = m.passed === m.pairs ? 'all OK' : `${m.pairs - m.passed} FAILED`;
  return [
    `  ${head}`,
    ...rows.map((r) => `  ${r}`),
    `connectivity: ${m.passed}/${m.pairs} pairs OK (${verdict})`,
  ].join('\n');
}

/** TCP throughput from `client` to `server` with iperf3 (one stream, `seconds` long), in Gbit/s. */
export async function iperf(
  client: DemoContainer,
  server: DemoContainer,
  seconds = 3,
): Promise<number> {
  const srv = spawn('ip', ['netns', 'exec', server.netns, 'iperf3', '-s', '-1', '-p', '5201'], {
    stdio: 'ignore',
  });
  try {
    for (let attempt = 0; ; attempt++) {
      const r = await nsRun(
        client.netns,
        'iperf3',
        ['-c', server.ip, '-p', '5201', '-t', String(seconds), '-J'],
        { allowFail: true, timeoutMs: (seconds + 15) * 1000 },
      );
      let why = r.stderr.trim();
      try {
        const j = JSON.parse(r.stdout) as {
          end?: { sum_received?: { bits_per_second?: number } };
          error?: string;
        };
        const bps = j.end?.sum_received?.bits_per_second ?? 0;
        if (r.code === 0 && !j.error && bps > 0) return bps / 1e9;
        why = j.error ?? (why || 'no result');
      } catch {
        why ||= r.stdout.slice(-300);
      }
      if (attempt >= 20) throw new Error(`iperf3 failed: ${why}`);
      await sleep(100); // the server is not listening yet
    }
  } finally {
    srv.kill('SIGKILL');
  }
}

/** `weftctl status` inside host 1's namespace (through the preset wrapper), indented; never throws. */
export async function weftctlStatus(ns: string, wrapper: string): Promise<string> {
  const r = await nsRun(ns, wrapper, ['status'], { allowFail: true, timeoutMs: 20_000 });
  const text = (r.stdout.trim() || r.stderr.trim()).split('\n').map((line) => `  ${line}`);
  return `${text.join('\n')}${r.code === 0 ? '' : `\n  (weftctl exited ${r.code})`}`;
}
