/**
 * subnet.env, flannel's hand-over file to the CNI plugin (flannel-compat.md §10): one KEY=value per
 * line in the order FLANNEL_NETWORK, FLANNEL_SUBNET (first host address/len), FLANNEL_IPV6_NETWORK,
 * FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ. Written atomically (temp + fsync + rename, 0644,
 * directory 0755). Read back on restart for the previous subnet; the file is treated as hostile.
 */
import { constants } from 'node:fs';
import { mkdir, open, rename, rm, chmod } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { Address4, Address6 } from 'ip-address';
import { WeftError } from '../errors.js';

export interface SubnetEnvValues {
  /** IPv4 cluster network, or null when IPv4 is off. */
  readonly network: string | null;
  /** Own IPv4 subnet in network form ('10.5.52.0/24'). */
  readonly subnet: string | null;
  readonly ipv6Network: string | null;
  readonly subnet6: string | null;
  readonly mtu: number;
  readonly ipMasq: boolean;
}

/** '10.5.52.0/24' → '10.5.52.1/24'. */
export function firstHost4(cidr: string): string {
  const a = new Address4(cidr);
  return `${Address4.fromBigInt(a.startAddress().bigInt() + 1n).correctForm()}/${a.subnetMask}`;
}

/** 'fc00::/64' → 'fc00::1/64' (canonical lower-case compressed form). */
export function firstHost6(cidr: string): string {
  const a = new Address6(cidr);
  return `${Address6.fromBigInt(a.startAddress().bigInt() + 1n).correctForm()}/${a.subnetMask}`;
}

/** The file's text in flannel's exact format and order. */
export function formatSubnetEnv(v: SubnetEnvValues): string {
  let out = '';
  if (v.network !== null && v.subnet !== null) {
    out += `FLANNEL_NETWORK=${v.network}\nFLANNEL_SUBNET=${firstHost4(v.subnet)}\n`;
  }
  if (v.ipv6Network !== null && v.subnet6 !== null) {
    out += `FLANNEL_IPV6_NETWORK=${v.ipv6Network}\nFLANNEL_IPV6_SUBNET=${firstHost6(v.subnet6)}\n`;
  }
  out += `FLANNEL_MTU=${v.mtu}\nFLANNEL_IPMASQ=${v.ipMasq ? 'true' : 'false'}\n`;
  return out;
}

/** Writes `content` to `path` atomically: same-directory temp file, fsync, rename, fsync of the dir. */
export async function writeFileAtomic(path: string, content: string, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  try {
    const created = await mkdir(dir, { recursive: true, mode: 0o755 });
    if (created !== undefined) {
      // mkdir's mode is masked by the umask: set 0755 on every directory this call created
      for (let d = dir; d.length >= created.length; d = dirname(d)) {
        await chmod(d, 0o755);
        if (d === created) break;
      }
    }
    const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
    const fh = await open(tmp, 'w', mode);
    try {
      await fh.writeFile(content);
      await fh.chmod(mode); // regardless of umask
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (err) {
    throw new WeftError('E_IO', `failed to write ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

export async function writeSubnetEnv(path: string, v: SubnetEnvValues): Promise<void> {
  await writeFileAtomic(path, formatSubnetEnv(v));
  await chmod(path, 0o644).catch(() => undefined);
}

export interface PreviousSubnets {
  /** Network form ('10.5.52.0/24'), or null when absent or invalid. */
  readonly subnet: string | null;
  readonly subnet6: string | null;
  readonly network: string | null;
  readonly ipv6Network: string | null;
  /** Problems found (for one warning line); the valid parts are still returned. */
  readonly problems: readonly string[];
}

const MAX_BYTES = 64 * 1024;

function cidr4(value: string): string | null {
  if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(value) || !Address4.isValid(value)) return null;
  const a = new Address4(value);
  return `${a.startAddress().correctForm()}/${a.subnetMask}`;
}

function cidr6(value: string): string | null {
  if (!/^[0-9a-fA-F:]+\/\d{1,3}$/.test(value) || !Address6.isValid(value)) return null;
  const a = new Address6(value);
  return `${a.startAddress().correctForm()}/${a.subnetMask}`;
}

/** Parses subnet.env text (pure). Unknown keys are ignored; bad values are reported, not thrown. */
export function parseSubnetEnv(text: string): PreviousSubnets {
  const problems: string[] = [];
  const seen: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) {
      problems.push(`line ${JSON.stringify(line.slice(0, 60))} is not KEY=value`);
      continue;
    }
    seen[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  const pick = (key: string, parse: (v: string) => string | null): string | null => {
    const raw = seen[key];
    if (raw === undefined || raw === '') return null;
    const v = parse(raw);
    if (v === null) problems.push(`${key}=${JSON.stringify(raw.slice(0, 60))} is not a valid CIDR`);
    return v;
  };
  return {
    network: pick('FLANNEL_NETWORK', cidr4),
    subnet: pick('FLANNEL_SUBNET', cidr4),
    ipv6Network: pick('FLANNEL_IPV6_NETWORK', cidr6),
    subnet6: pick('FLANNEL_IPV6_SUBNET', cidr6),
    problems,
  };
}

/**
 * FLANNEL_MTU and FLANNEL_IPMASQ of subnet.env text (pure; for weftctl's checks). A missing or invalid
 * value is null.
 */
export function parseSubnetEnvSettings(text: string): {
  mtu: number | null;
  ipMasq: boolean | null;
} {
  let mtu: number | null = null;
  let ipMasq: boolean | null = null;
  for (const line of text.split('\n')) {
    const m = /^(FLANNEL_MTU|FLANNEL_IPMASQ)=(.*)$/.exec(line.trim());
    if (!m) continue;
    const v = (m[2] ?? '').trim();
    if (m[1] === 'FLANNEL_MTU')
      mtu = /^\d{1,5}$/.test(v) && Number(v) >= 68 && Number(v) <= 65535 ? Number(v) : null;
    else ipMasq = v === 'true' ? true : v === 'false' ? false : null;
  }
  return { mtu, ipMasq };
}

/** Reads the previous subnet.env; null when absent. Never throws for bad content. */
export async function readSubnetEnv(path: string): Promise<PreviousSubnets | null> {
  let buf: Buffer;
  try {
    // O_NONBLOCK: a FIFO planted at the path must not block startup until some writer appears.
    const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    try {
      const st = await fh.stat();
      if (!st.isFile())
        return {
          subnet: null,
          subnet6: null,
          network: null,
          ipv6Network: null,
          problems: [`${path} is not a regular file`],
        };
      buf = Buffer.alloc(Math.min(st.size, MAX_BYTES));
      await fh.read(buf, 0, buf.length, 0);
    } finally {
      await fh.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return {
      subnet: null,
      subnet6: null,
      network: null,
      ipv6Network: null,
      problems: [`cannot read ${path}: ${(err as Error).message}`],
    };
  }
  return parseSubnetEnv(buf.toString('utf8'));
}
