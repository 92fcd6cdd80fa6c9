/**
 * etcd client security (issue 3): TLS with a CA and a client certificate generated here with openssl,
 * refusal of half a TLS config, no silent plain-text fallback, and username/password auth.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEtcd } from '../helpers/etcd.js';
import { run } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { warnRecorder } from '../helpers/logger.js';
import { requireCaps } from '../helpers/require.js';
import { hasCode, type WeftError } from '../../src/errors.js';
import { createEtcdSubnetManager } from '../../src/subnet/etcd-manager.js';
import { nullLogger } from '../../src/log/logger.js';
import { attrs, CuttableProxy, putConfig, useSubnetEtcd } from './subnet-helpers.js';

const runnable = requireCaps('etcd', 'etcdctl', 'openssl');
useLeakCheck();

interface Pki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  noCnCert: string;
  noCnKey: string;
}

async function makePki(): Promise<Pki> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-pki-'));
  const p = (f: string): string => join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.crt'),
    '-days',
    '1',
    '-subj',
    '/CN=weft-test-ca',
  ]);
  const issue = async (name: string, cn: string, ext: string): Promise<void> => {
    writeFileSync(p(`${name}.ext`), ext);
    await run('openssl', [
      'req',
      ...ec,
      '-keyout',
      p(`${name}.key`),
      '-out',
      p(`${name}.csr`),
      '-subj',
      cn ? `/CN=${cn}` : '/O=weft-test',
    ]);
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      p(`${name}.csr`),
      '-CA',
      p('ca.crt'),
      '-CAkey',
      p('ca.key'),
      '-CAcreateserial',
      '-out',
      p(`${name}.crt`),
      '-days',
      '1',
      '-extfile',
      p(`${name}.ext`),
    ]);
  };
  await issue(
    'server',
    '127.0.0.1',
    'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  await issue('client', 'root', 'extendedKeyUsage=clientAuth\n');
  // etcd's HTTP gateway refuses a client certificate with a CommonName while auth is enabled.
  await issue('nocn', '', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    noCnCert: p('nocn.crt'),
    noCnKey: p('nocn.key'),
  };
}

describe.skipIf(!runnable)('etcd client: TLS and auth', () => {
  let pki: Pki;
  const { etcd, managers, stops } = useSubnetEtcd(async () => {
    pki = await makePki();
    return startEtcd({
      scheme: 'https',
      extraArgs: [
        '--cert-file',
        pki.serverCert,
        '--key-file',
        pki.serverKey,
        '--trusted-ca-file',
        pki.ca,
        '--client-cert-auth',
      ],
      etcdctlArgs: ['--cacert', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey],
    });
  });
  afterAll(() => {
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  it('leases over TLS with a CA and a client certificate', async () => {
    expect(etcd.endpoints[0]).toMatch(/^https:\/\//);
    const prefix = etcd.prefix('tls');
    await putConfig(etcd, prefix, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    const m = managers.make(prefix, {
      tls: { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey },
    });
    const lease = await m.acquireLease(attrs(1));
    expect(
      await etcd.etcdctl(['get', '--print-value-only', `${prefix}/subnets/${lease.key}`]),
    ).toContain('198.18.0.1');
  });

  it('refuses half a TLS config, and TLS files with http endpoints, with a clear error', () => {
    const make = (o: Partial<Parameters<typeof createEtcdSubnetManager>[0]>) => () =>
      createEtcdSubnetManager({ endpoints: etcd.endpoints, log: nullLogger, ...o });
    expect(make({ tls: { certFile: pki.clientCert } })).toThrow(
      /certFile .* given without keyFile.*never falls back to plain http/,
    );
    expect(make({ tls: { keyFile: pki.clientKey, caFile: pki.ca } })).toThrow(
      /keyFile .* given without certFile/,
    );
    expect(make({ endpoints: ['http://127.0.0.1:1'], tls: { caFile: pki.ca } })).toThrow(
      /TLS files are set but the endpoints are http/,
    );
    expect(make({ tls: { caFile: join(pki.dir, 'missing.crt') } })).toThrow(
      /caFile .*missing.crt cannot be read/,
    );
    expect(make({ username: 'root' })).toThrow(/username and password must be given together/);
    // Files that read but are no TLS material: named at start (before, a junk certificate failed
    // every request with OpenSSL's "no start line" and no file name, and a junk CA trusted nothing).
    const junk = join(pki.dir, 'junk.pem');
    writeFileSync(junk, 'not a PEM file\n');
    expect(make({ tls: { certFile: junk, keyFile: pki.clientKey } })).toThrow(
      /certFile .*junk.pem: not a PEM certificate/,
    );
    expect(make({ tls: { certFile: pki.clientCert, keyFile: junk } })).toThrow(
      /keyFile .*junk.pem: not a PEM private key/,
    );
    expect(make({ tls: { certFile: pki.clientCert, keyFile: pki.serverKey } })).toThrow(
      /certFile .* and keyFile .* do not make a pair/,
    );
    expect(make({ tls: { caFile: junk } })).toThrow(/caFile .*junk.pem: holds no PEM certificate/);
    let err: unknown;
    try {
      make({ tls: { certFile: pki.clientCert } })();
    } catch (e) {
      err = e;
    }
    expect(hasCode(err, 'E_ETCD_TLS')).toBe(true);
  });

  it('without the client certificate the request fails (no plain-text fallback)', async () => {
    const prefix = etcd.prefix('nocert');
    const m = managers.make(prefix, { tls: { caFile: pki.ca }, requestTimeoutMs: 1500 });
    const err = (await m.getNetworkConfig().catch((e: unknown) => e)) as WeftError;
    expect(hasCode(err, 'E_ETCD_UNAVAILABLE')).toBe(true);
  });

  it('client TLS files replaced on disk are used by the next connection, without a restart', async () => {
    // The rotation operators meet: the certificate on disk expired or was issued by a CA etcd no longer
    // trusts, and cert-manager (or the operator) writes the new one in place. Before, the files were
    // read once at start and every request kept failing until weftd was restarted.
    const foreign = await makePki(); // a CA etcd does not trust
    const dir = mkdtempSync(join(tmpdir(), 'weft-rotate-'));
    try {
      const files = {
        caFile: join(dir, 'ca.crt'),
        certFile: join(dir, 'c.crt'),
        keyFile: join(dir, 'c.key'),
      };
      const put = (ca: string, cert: string, key: string): void => {
        writeFileSync(files.caFile, readFileSync(ca));
        writeFileSync(files.certFile, readFileSync(cert));
        writeFileSync(files.keyFile, readFileSync(key));
      };
      put(pki.ca, foreign.clientCert, foreign.clientKey);
      const prefix = etcd.prefix('rotate');
      await putConfig(etcd, prefix, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
      const m = managers.make(prefix, { tls: files, requestTimeoutMs: 2000 });
      const err = (await m.getNetworkConfig().catch((e: unknown) => e)) as WeftError;
      expect(hasCode(err, 'E_ETCD_UNAVAILABLE'), String(err)).toBe(true);
      // Half a rotation (the certificate written, not yet its key) fails as before, and is not fatal.
      writeFileSync(files.certFile, readFileSync(pki.clientCert));
      expect(
        hasCode(await m.getNetworkConfig().catch((e: unknown) => e), 'E_ETCD_UNAVAILABLE'),
      ).toBe(true);
      put(pki.ca, pki.clientCert, pki.clientKey);
      expect((await m.getNetworkConfig()).network).toBe('10.5.0.0/16');
      // The CA file too: a CA that does not sign etcd's certificate, then the right one.
      writeFileSync(files.caFile, readFileSync(foreign.ca));
      const m2 = managers.make(prefix, { tls: files, requestTimeoutMs: 2000 });
      const caErr = (await m2.getNetworkConfig().catch((e: unknown) => e)) as WeftError;
      expect(String(caErr)).toMatch(/\(TLS\)/);
      writeFileSync(files.caFile, readFileSync(pki.ca));
      expect((await m2.getNetworkConfig()).network).toBe('10.5.0.0/16');
    } finally {
      rmSync(foreign.dir, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('TLS files that become unusable at run time are warned about once, by name, and recovered from', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-tlsrt-'));
    try {
      const files = {
        caFile: join(dir, 'ca.crt'),
        certFile: join(dir, 'c.crt'),
        keyFile: join(dir, 'c.key'),
      };
      writeFileSync(files.caFile, readFileSync(pki.ca));
      writeFileSync(files.certFile, readFileSync(pki.clientCert));
      writeFileSync(files.keyFile, readFileSync(pki.clientKey));
      const prefix = etcd.prefix('tls-runtime');
      await putConfig(etcd, prefix, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
      const log = warnRecorder();
      const infos: string[] = [];
      log.info = (m: string) => void infos.push(m);
      // Through a proxy that drops every connection before each burst of requests: each burst then
      // opens new connections, each reading the files as they are now.
      const up = new URL(etcd.endpoints[0]!);
      const proxy = new CuttableProxy({ host: up.hostname, port: Number(up.port) });
      await proxy.start();
      stops.push(() => proxy.stop());
      const m = managers.make(
        prefix,
        {
          endpoints: [`https://127.0.0.1:${proxy.port}`],
          tls: files,
          requestTimeoutMs: 3000,
        },
        log,
      );
      const burst = async (): Promise<void> => {
        proxy.disconnect();
        proxy.reconnect();
        const got = await Promise.all(Array.from({ length: 4 }, () => m.getNetworkConfig()));
        for (const c of got) expect(c.network).toBe('10.5.0.0/16');
      };
      await burst();
      expect(log.warnings).toEqual([]);
      const problems = (): string[] => log.warnings.map(([, f]) => String(f?.['problem']));

      rmSync(files.certFile); // deleted
      await burst();
      await burst();
      expect(problems()).toHaveLength(1); // once, not per connection
      expect(problems()[0]).toMatch(/certFile .*c\.crt cannot be read: .*ENOENT/);
      expect(String(log.warnings[0]![1]?.['fix'])).toMatch(/--etcd-certfile/);
      writeFileSync(files.certFile, readFileSync(pki.clientCert));
      await burst();
      expect(infos).toContain('etcd TLS files usable again');

      // A CA file replaced with junk: before, node:tls took it silently and new connections trusted
      // no etcd certificate at all (every one failed "unable to get local issuer certificate").
      writeFileSync(files.caFile, 'junk\n');
      await burst();
      expect(problems()).toHaveLength(2);
      expect(problems()[1]).toMatch(/caFile .*ca\.crt: holds no PEM certificate/);

      writeFileSync(files.caFile, readFileSync(pki.ca));
      writeFileSync(files.keyFile, 'junk\n'); // another problem: warned about too
      await burst();
      expect(problems()).toHaveLength(3);
      expect(problems()[2]).toMatch(/keyFile .*c\.key: not a PEM private key/);
      writeFileSync(files.keyFile, readFileSync(pki.clientKey));
      await burst();
      expect(problems()).toHaveLength(3);
      expect(infos.filter((i) => i === 'etcd TLS files usable again')).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('authenticates with username and password; a wrong password is E_ETCD_AUTH', async () => {
    await etcd.etcdctl(['user', 'add', 'root', '--new-user-password', 'weft-secret']);
    await etcd.etcdctl(['auth', 'enable']);
    const tls = { caFile: pki.ca, certFile: pki.noCnCert, keyFile: pki.noCnKey };
    const prefix = etcd.prefix('auth');
    await etcd.etcdctl([
      '--user',
      'root:weft-secret',
      'put',
      `${prefix}/config`,
      '{"Network":"10.5.0.0/16"}',
    ]);
    const good = managers.make(prefix, { tls, username: 'root', password: 'weft-secret' });
    expect((await good.acquireLease(attrs(1))).subnet).toMatch(/^10\.5\./);
    const bad = managers.make(prefix, {
      tls,
      username: 'root',
      password: 'wrong',
      requestTimeoutMs: 2000,
    });
    const err = (await bad.getNetworkConfig().catch((e: unknown) => e)) as WeftError;
    expect(hasCode(err, 'E_ETCD_AUTH'), String(err)).toBe(true);
    // A certificate with a CommonName: etcd's gateway refuses it while auth is on; the error says why.
    const cn = managers.make(prefix, {
      tls: { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey },
      username: 'root',
      password: 'weft-secret',
      requestTimeoutMs: 2000,
    });
    const cnErr = (await cn.getNetworkConfig().catch((e: unknown) => e)) as WeftError;
    expect(hasCode(cnErr, 'E_ETCD_TLS'), String(cnErr)).toBe(true);
    expect(cnErr.message).toMatch(/without a CN/);
  });
});
