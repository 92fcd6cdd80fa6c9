/**
 * The client's TLS files, read again for every new connection to etcd, so a certificate, key or CA
 * replaced on disk (cert-manager or an operator rotating them) is used from the next connection on,
 * without a restart. flannel does the same for the certificate and key: etcd's Go transport loads them
 * at every handshake. Connections already open keep the material they were made with.
 *
 * A set of files that does not make a valid TLS context (a missing file, a certificate replaced before
 * its key, a half-written file) keeps the last valid one until the files are whole again.
 */
import type tls from 'node:tls';

export interface PemSet {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

const same = (a?: Buffer, b?: Buffer): boolean =>
  a === undefined || b === undefined ? a === b : a.equals(b);

export class TlsFiles {
  private pems: PemSet;
  private ctx: tls.SecureContext | undefined;

  /** `read` reads the files again (throws when one cannot be read); `initial` is the start's read. */
  constructor(
    private readonly read: () => PemSet,
    initial: PemSet,
  ) {
    this.pems = initial;
  }

  /** The TLS context for a new connection, from the files as they are now (or the last valid ones). */
  context(): tls.SecureContext {
    let now: PemSet | undefined;
    try {
      now = this.read();
    } catch {
      // kept: the last valid files
    }
    const t = process.getBuiltinModule('node:tls');
    const { ca, cert, key } = this.pems;
    if (now && !(same(now.ca, ca) && same(now.cert, cert) && same(now.key, key))) {
      try {
        this.ctx = t.createSecureContext(now);
        this.pems = now;
      } catch {
        // kept: the last valid files
      }
    }
    this.ctx ??= t.createSecureContext(this.pems);
    return this.ctx;
  }
}
