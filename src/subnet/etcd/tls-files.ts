/**
 * The client's TLS files, read again for every new connection to etcd, so a certificate, key or CA
 * replaced on disk (cert-manager or an operator rotating them) is used from the next connection on,
 * without a restart. flannel does the same for the certificate and key: etcd's Go transport loads them
 * at every handshake. Connections already open keep the material they were made with.
 *
 * A set of files that does not make a valid TLS context (a missing file, a certificate replaced before
 * its key, a half-written file, a CA file without a certificate) keeps the last valid one until the
 * files are whole again. `report` hears of it once per distinct problem (the message names the file),
 * and with null when the files are usable again.
 */
import type tls from 'node:tls';

export interface PemSet {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/** How each file is named in errors (e.g. "caFile /etc/weft/ca.pem"). */
export interface PemNames {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

const same = (a?: Buffer, b?: Buffer): boolean =>
  a === undefined || b === undefined ? a === b : a.equals(b);

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * The TLS context of `p`; throws an Error naming the file that spoils it. A CA without a parsable
 * certificate is refused here: node:tls takes it silently and then trusts no etcd certificate at all.
 */
export function secureContextOf(p: PemSet, names: PemNames): tls.SecureContext {
  const t = process.getBuiltinModule('node:tls');
  const crypto = process.getBuiltinModule('node:crypto');
  const fail = (which: keyof PemNames, why: string): Error =>
    new Error(`etcd TLS ${names[which] ?? which}: ${why}`);
  if (p.ca) {
    const blocks = p.ca.toString('latin1').match(CERT_BLOCK) ?? [];
    if (blocks.length === 0) throw fail('ca', 'holds no PEM certificate');
    for (const b of blocks)
      try {
        new crypto.X509Certificate(b);
      } catch (err) {
        throw fail('ca', `holds an unreadable certificate (${(err as Error).message})`);
      }
  }
  try {
    return t.createSecureContext(p);
  } catch (err) {
    const msg = (err as Error).message;
    const alone = (which: 'cert' | 'key'): boolean => {
      try {
        t.createSecureContext({ [which]: p[which] });
        return true;
      } catch {
        return false;
      }
    };
    if (p.cert && !alone('cert')) throw fail('cert', `not a PEM certificate (${msg})`);
    if (p.key && !alone('key')) throw fail('key', `not a PEM private key (${msg})`);
    throw new Error(
      `etcd TLS ${names.cert ?? 'cert'} and ${names.key ?? 'key'} do not make a pair (${msg})`,
    );
  }
}

export class TlsFiles {
  private pems: PemSet;
  private ctx: tls.SecureContext | undefined;
  private problem: string | null = null;

  /**
   * `read` reads the files again (throws, naming the file, when one cannot be read); `initial` is the
   * start's read, already checked with secureContextOf.
   */
  constructor(
    private readonly read: () => PemSet,
    initial: PemSet,
    private readonly names: PemNames,
    private readonly report?: (problem: string | null) => void,
  ) {
    this.pems = initial;
  }

  /** The TLS context for a new connection, from the files as they are now (or the last valid ones). */
  context(): tls.SecureContext {
    let problem: string | null = null;
    try {
      const now = this.read();
      if (
        !this.ctx ||
        !(
          same(now.ca, this.pems.ca) &&
          same(now.cert, this.pems.cert) &&
          same(now.key, this.pems.key)
        )
      ) {
        this.ctx = secureContextOf(now, this.names);
        this.pems = now;
      }
    } catch (err) {
      problem = (err as Error).message; // kept: the last valid files
    }
    if (problem !== this.problem) {
      this.problem = problem;
      this.report?.(problem);
    }
    this.ctx ??= secureContextOf(this.pems, this.names);
    return this.ctx;
  }
}
