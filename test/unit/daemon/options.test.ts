import { describe, expect, it } from 'vitest';
import { parseOptions, renderHelp, FLAGS } from '../../../src/daemon/options.js';
import { WeftError } from '../../../src/errors.js';

function fails(argv: string[], env: Record<string, string> = {}): WeftError {
  try {
    parseOptions(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(WeftError);
    expect((err as WeftError).code).toBe('E_OPTION_INVALID');
    return err as WeftError;
  }
  throw new Error(`expected ${argv.join(' ')} to fail`);
}

describe('weftd options', () => {
  it('has flannel defaults', () => {
    const o = parseOptions([], {});
    expect(o).toMatchObject({
      etcdEndpoints: ['http://127.0.0.1:2379'],
      etcdPrefix: '/coreos.com/network',
      etcdKeyfile: null,
      iface: [],
      ifaceRegex: [],
      ifaceCanReach: null,
      publicIp: null,
      subnetFile: '/run/flannel/subnet.env',
      subnetLeaseRenewMargin: 60,
      subnetLeaseTtl: null,
      ipMasq: false,
      iptablesForwardRules: true,
      iptablesResync: 5,
      healthzIp: '0.0.0.0',
      healthzPort: 0,
      metricsPort: 0,
      stateDir: '/var/lib/weft',
      cniSocket: '/run/weft/cni.sock',
      logLevel: 'info',
      help: false,
    });
    expect(Object.isFrozen(o)).toBe(true);
  });

  it('accepts Go flag syntax: -x, --x, --x=v, --x v, bools with =false', () => {
    const o = parseOptions(
      [
        '-etcd-endpoints=http://10.0.0.1:2379,https://10.0.0.2:2379',
        '--etcd-prefix',
        '/x/network',
        '--ip-masq',
        '-iptables-forward-rules=false',
        '--healthz-port=8081',
        '--subnet-lease-renew-margin',
        '5',
      ],
      {},
    );
    expect(o.etcdEndpoints).toEqual(['http://10.0.0.1:2379', 'https://10.0.0.2:2379']);
    expect(o.etcdPrefix).toBe('/x/network');
    expect(o.ipMasq).toBe(true);
    expect(o.iptablesForwardRules).toBe(false);
    expect(o.healthzPort).toBe(8081);
    expect(o.subnetLeaseRenewMargin).toBe(5);
  });

  it('collects repeatable flags in order', () => {
    const o = parseOptions(
      ['--iface=eth1', '--iface', '198.18.0.1', '--iface-regex=^en', '--iface-regex', 'eth.*'],
      {},
    );
    expect(o.iface).toEqual(['eth1', '198.18.0.1']);
    expect(o.ifaceRegex).toEqual(['^en', 'eth.*']);
  });

  it('reads WEFTD_* then FLANNELD_* for flags not on the command line; flags win; empty ignored', () => {
    const env = {
      FLANNELD_ETCD_PREFIX: '/flannel/network',
      WEFTD_IP_MASQ: 'true',
      FLANNELD_IP_MASQ: 'false',
      FLANNELD_SUBNET_FILE: '',
      FLANNELD_HEALTHZ_PORT: '9000',
      FLANNELD_IFACE: 'eth9',
    };
    const o = parseOptions(['--healthz-port=8081'], env);
    expect(o.etcdPrefix).toBe('/flannel/network');
    expect(o.ipMasq).toBe(true);
    expect(o.subnetFile).toBe('/run/flannel/subnet.env');
    expect(o.healthzPort).toBe(8081);
    expect(o.iface).toEqual(['eth9']);
  });

  it('rejects a renew margin outside 1..1439 naming the flag and the range', () => {
    expect(fails(['--subnet-lease-renew-margin=0']).message).toMatch(
      /--subnet-lease-renew-margin=0 is invalid: must be between 1 and 1439 minutes/,
    );
    expect(fails(['--subnet-lease-renew-margin=1440']).message).toMatch(/1439/);
    expect(parseOptions(['--subnet-lease-renew-margin=1439'], {}).subnetLeaseRenewMargin).toBe(
      1439,
    );
  });

  it('names the env variable when the bad value came from the environment', () => {
    expect(fails([], { FLANNELD_IP_MASQ: 'yes' }).message).toMatch(
      /FLANNELD_IP_MASQ must be true or false/,
    );
    expect(fails([], { WEFTD_HEALTHZ_PORT: '70000' }).message).toMatch(
      /WEFTD_HEALTHZ_PORT=70000 is invalid/,
    );
  });

  it('rejects unknown flags, positional args, missing values and bad types', () => {
    expect(fails(['--nope']).message).toMatch(/flag --nope is not defined: see weftd --help/);
    expect(fails(['extra']).message).toMatch(/is not a flag/);
    expect(fails(['--etcd-prefix']).message).toMatch(/--etcd-prefix needs a value/);
    expect(fails(['--healthz-port=abc']).message).toMatch(/--healthz-port must be an integer/);
    expect(fails(['--ip-masq=maybe']).message).toMatch(/--ip-masq must be true or false/);
  });

  it('validates addresses, URLs, regexes and log level', () => {
    expect(fails(['--public-ip=fd18::1']).message).toMatch(
      /--public-ip=fd18::1 is invalid: must be an IPv4 address/,
    );
    expect(fails(['--public-ipv6=198.18.0.1']).message).toMatch(/must be an IPv6 address/);
    // Addresses no peer accepts in a lease. Before, weftd took them: it ran ready and unreachable in
    // that family (every peer refusing its lease), or, with a zone, exited 1 on writing its lease
    // with "lease value: PublicIPv6 … is not an IPv6 address", naming no flag, on every restart.
    for (const bad of ['::ffff:198.18.0.5', 'ff02::1', '::', '::1'])
      expect(fails([`--public-ipv6=${bad}`]).message).toMatch(
        /--public-ipv6=\S+ is invalid: must be a unicast address other hosts can send to \(e\.g\. fd18::1\): every peer would refuse this one \(public IP \S+ is not a unicast host address\)/,
      );
    for (const bad of ['fe80::1%eth0', 'fd18::1%1'])
      expect(fails([`--public-ipv6=${bad}`]).message).toMatch(
        /--public-ipv6=\S+ is invalid: must be an IPv6 address without a zone/,
      );
    for (const bad of ['0.0.0.0', '127.0.0.1', '224.0.0.1', '255.255.255.255'])
      expect(fails([`--public-ip=${bad}`]).message).toMatch(
        /--public-ip=\S+ is invalid: must be a unicast address other hosts can send to/,
      );
    expect(parseOptions(['--public-ipv6=FD18:0::1'], {}).publicIpv6).toBe('FD18:0::1');
    // one parser with weftctl's (src/flags/etcd-flags.ts): the same words for the same mistake
    for (const bad of ['ftp://x:1', 'http://x:2379/v2/keys', 'http://x:99999', '127.0.0.1:2379'])
      expect(fails([`--etcd-endpoints=${bad}`]).message).toBe(
        `--etcd-endpoints: ${JSON.stringify(bad)} is not like http://host:port or https://host:port`,
      );
    expect(fails(['--etcd-endpoints=,']).message).toMatch(/--etcd-endpoints: no endpoint given/);
    expect(fails(['--iface-regex=(']).message).toMatch(/not a valid regular expression/);
    expect(fails(['--log-level=loud']).message).toMatch(/debug, info, warn or error/);
    expect(fails(['--etcd-prefix=relative']).message).toMatch(/absolute key/);
    expect(parseOptions(['--public-ip=198.18.0.1', '--public-ipv6=fd18::1'], {}).publicIpv6).toBe(
      'fd18::1',
    );
  });

  it('refuses a lone TLS cert or key (flannel would silently drop TLS)', () => {
    expect(fails(['--etcd-certfile=/c.pem']).message).toMatch(
      /--etcd-certfile is set but --etcd-keyfile is not: give both/,
    );
    expect(fails(['--etcd-keyfile=/k.pem']).message).toMatch(/--etcd-certfile is not/);
    const o = parseOptions(['--etcd-cafile=/ca.pem'], {});
    expect(o.etcdCafile).toBe('/ca.pem');
  });

  it('--help lists every flag with its default', () => {
    const help = renderHelp();
    for (const f of FLAGS) expect(help).toContain(`--${f.name}`);
    expect(help).toContain('(default /run/flannel/subnet.env)');
    expect(help).toContain('(default 60)');
    expect(help).toContain('FLANNELD_<FLAG>');
    expect(parseOptions(['-h'], {}).help).toBe(true);
  });
});
