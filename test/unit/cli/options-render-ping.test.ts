import { describe, expect, it } from 'vitest';
import { parseCliOptions, renderCliHelp } from '../../../src/cli/options.js';
import { parsePing, pingArgv } from '../../../src/cli/commands/ping.js';
import { formatDuration, sanitize, table, toJson, wantColor } from '../../../src/cli/render.js';
import {
  forwardDropChains,
  parseEthtoolFeature,
  parseUdpCsumErrors,
} from '../../../src/cli/host-view.js';
import { compareKeys, shortEtcdError, toRecord } from '../../../src/cli/etcd-view.js';
import { PING_SCHEMA, validate } from './schema.js';

describe('options', () => {
  it('defaults like weftd (flannel names and defaults)', () => {
    const o = parseCliOptions(['status'], {});
    expect(o).toMatchObject({
      command: 'status',
      args: [],
      json: false,
      etcdEndpoints: ['http://127.0.0.1:2379'],
      etcdPrefix: '/coreos.com/network',
      subnetFile: '/run/flannel/subnet.env',
      healthzUrl: null,
      timeoutMs: 3000,
      count: 5,
    });
  });

  it('flags anywhere, Go syntax, and the command words', () => {
    const o = parseCliOptions(
      ['--json', 'trace', '-etcd-prefix', '/x/net/', '10.5.1.2', '--timeout=0.5', '10.5.2.2'],
      {},
    );
    expect(o).toMatchObject({
      command: 'trace',
      args: ['10.5.1.2', '10.5.2.2'],
      json: true,
      etcdPrefix: '/x/net',
      timeoutMs: 500,
    });
  });

  it('reads WEFTCTL_, then WEFTD_, then FLANNELD_ for the shared flags; flags win', () => {
    const env = {
      FLANNELD_ETCD_ENDPOINTS: 'http://f:2379',
      WEFTD_ETCD_PREFIX: '/weftd',
      FLANNELD_ETCD_PREFIX: '/flannel',
      WEFTD_HEALTHZ_PORT: '8081',
      WEFTCTL_JSON: 'true',
      FLANNELD_JSON: 'false',
    };
    expect(parseCliOptions(['leases'], env)).toMatchObject({
      etcdEndpoints: ['http://f:2379'],
      etcdPrefix: '/weftd',
      healthzUrl: 'http://127.0.0.1:8081',
      json: true,
    });
    expect(
      parseCliOptions(
        ['leases', '--etcd-endpoints=https://a:1,https://b:2', '--healthz-url=http://10.0.0.1:9/'],
        env,
      ),
    ).toMatchObject({
      etcdEndpoints: ['https://a:1', 'https://b:2'],
      healthzUrl: 'http://10.0.0.1:9',
    });
    expect(parseCliOptions(['status'], { WEFTD_HEALTHZ_PORT: '0' }).healthzUrl).toBeNull();
  });

  it.each([
    [['bogus'], /unknown command "bogus"/],
    [['status', '--nope'], /flag --nope is not defined/],
    [['status', '--etcd-endpoints=127.0.0.1:2379'], /not like http:\/\/host:port/],
    [['status', '--etcd-prefix=relative'], /must be an absolute key/],
    [['ping', '1.2.3.4', '--count=0'], /--count=0 is invalid/],
    [['ping', '1.2.3.4', '--from-container=$(reboot)'], /must be a netns name or path/],
    [['status', '--json=maybe'], /must be true or false/],
    [['status', '--timeout'], /needs a value/],
    [['ping', '1.2.3.4', '--count=x'], /^--count must be a whole number, got "x"$/],
    [['ping', '1.2.3.4', '--interval=1.1234567'], /^--interval must be a number, got "1.1234567"$/],
  ])('%j → usage error naming the flag and the fix', (argv, message) => {
    expect(() => parseCliOptions(argv, {})).toThrow(message);
  });

  it('refuses --output on any command but docker-opts, pointing at --json (it was ignored: a table printed)', () => {
    expect(() => parseCliOptions(['peers', '--output=json'], {})).toThrow(
      '--output applies to docker-opts only (the file to write), not to peers: for JSON output use --json',
    );
    expect(() => parseCliOptions(['status', '--output', 'json'], {})).toThrow(/use --json/);
    expect(parseCliOptions(['docker-opts', '--output=/run/x.env'], {}).output).toBe('/run/x.env');
    // the other command flags stay harmless elsewhere (wrapper scripts pass them to every command)
    expect(parseCliOptions(['status', '--no-probe', '--yes'], {}).command).toBe('status');
  });

  it('names the environment variable that is wrong', () => {
    expect(() => parseCliOptions(['status'], { WEFTD_ETCD_PREFIX: 'x' })).toThrow(
      /environment variable WEFTD_ETCD_PREFIX=x is invalid/,
    );
  });

  it('help lists every command and the exit codes', () => {
    const h = renderCliHelp();
    for (const c of [
      'status',
      'leases',
      'lease reserve',
      'config get',
      'peers',
      'doctor',
      'trace',
      'ping',
    ])
      expect(h).toContain(c);
    expect(h).toMatch(/exit codes: 0 ok · 1 a problem was found · 2 usage error/);
  });
});

describe('render', () => {
  it('aligns columns and prints (none) for an empty table', () => {
    expect(
      table(
        { color: false },
        ['a', 'long header'],
        [
          ['xxxx', 'y'],
          ['z', { text: 'ok', tone: 'ok' }],
        ],
      ),
    ).toBe('A     LONG HEADER\nxxxx  y\nz     ok\n');
    expect(table({ color: false }, ['a'], [])).toBe('A\n(none)\n');
  });

  it('cells from etcd reach the terminal without control characters or bidi overrides', () => {
    const key = '10.5.4.0-24\u202e42-0.3.5.01\x1b]0;x\x07\u2066';
    expect(sanitize(key)).toBe('10.5.4.0-24?42-0.3.5.01?]0;x??');
    // eslint-disable-next-line no-control-regex
    expect(table({ color: false }, ['key'], [[key]])).not.toMatch(/[\u202e\u2066\x1b\x07]/);
    expect(sanitize('pöd-日本 ✓')).toBe('pöd-日本 ✓');
  });

  it('colours only when asked or on a TTY without NO_COLOR, and never breaks alignment', () => {
    expect(wantColor('auto', true, {})).toBe(true);
    expect(wantColor('auto', false, {})).toBe(false);
    expect(wantColor('auto', true, { NO_COLOR: '1' })).toBe(false);
    expect(wantColor('auto', true, { TERM: 'dumb' })).toBe(false);
    expect(wantColor('always', false, {})).toBe(true);
    expect(wantColor('never', true, {})).toBe(false);
    const t = table(
      { color: true },
      ['v', 'x'],
      [
        [{ text: 'ok', tone: 'ok' }, '1'],
        [{ text: 'missing', tone: 'bad' }, '2'],
      ],
    );
    expect(t).toContain('\x1b[32mok\x1b[39m       1');
    expect(t).toContain('\x1b[31mmissing\x1b[39m  2');
  });

  it('neutralises control characters from hostile etcd values', () => {
    expect(table({ color: false }, ['k'], [['evil\x1b[2J\x07']])).toBe('K\nevil?[2J?\n');
  });

  it('formats durations and JSON', () => {
    expect(formatDuration(null)).toBe('?'); // an unknown TTL (leases, status, doctor)
    expect([0, 59, 61, 3600, 90061, -1].map(formatDuration)).toEqual([
      '0s',
      '59s',
      '1m1s',
      '1h0m',
      '1d1h1m',
      'expired',
    ]);
    expect(toJson({ a: 1 })).toBe('{\n  "a": 1\n}\n');
    // a hostile etcd value nested far deeper than JSON.stringify's stack allows is cut, not fatal
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const out = toJson({ key: '10.5.1.0-24', backendData: deep });
    expect(JSON.parse(out).key).toBe('10.5.1.0-24');
    expect(out).toContain('<nested too deep: cut by weftctl>');
  });
});

describe('ping', () => {
  const OUT = `PING 10.5.2.2 (10.5.2.2) 56(84) bytes of data.
64 bytes from 10.5.2.2: icmp_seq=1 ttl=62 time=0.101 ms
64 bytes from 10.5.2.2: icmp_seq=2 ttl=62 time=0.090 ms
64 bytes from 10.5.2.2: icmp_seq=4 ttl=62 time=0.083 ms

--- 10.5.2.2 ping statistics ---
4 packets transmitted, 3 received, 25% packet loss, time 3052ms
rtt min/avg/max/mdev = 0.083/0.091/0.101/0.007 ms
`;
  it('parses loss and RTT from iputils output', () => {
    const r = parsePing(OUT, '10.5.2.2', null);
    expect(r).toEqual({
      target: '10.5.2.2',
      from: null,
      transmitted: 4,
      received: 3,
      lossPercent: 25,
      rttMs: { min: 0.083, avg: 0.091, max: 0.101, mdev: 0.007 },
      replies: [0.101, 0.09, 0.083],
      errors: [],
    });
    expect(validate({ ok: false, ...r }, PING_SCHEMA)).toEqual([]);
  });

  it('reports ICMP errors and total loss', () => {
    const r = parsePing(
      'PING 10.5.9.9 (10.5.9.9) 56(84) bytes of data.\nFrom 10.5.1.1 icmp_seq=1 Destination Host Unreachable\nFrom 10.5.1.1 icmp_seq=2 Destination Host Unreachable\n\n--- 10.5.9.9 ping statistics ---\n2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 1001ms\n',
      '10.5.9.9',
      'c1',
    );
    expect(r).toMatchObject({
      transmitted: 2,
      received: 0,
      lossPercent: 100,
      rttMs: null,
      errors: ['Destination Host Unreachable'],
    });
    expect(parsePing('', 'x', null).lossPercent).toBe(100);
  });

  it('runs ping in a named netns with ip netns exec, in a path with nsenter', () => {
    expect(pingArgv('10.5.2.2', 3, 0.2, null)).toEqual([
      'ping',
      '-n',
      '-c',
      '3',
      '-i',
      '0.2',
      '-W',
      '1',
      '10.5.2.2',
    ]);
    expect(pingArgv('10.5.2.2', 1, 1, 'c1').slice(0, 5)).toEqual([
      'ip',
      'netns',
      'exec',
      'c1',
      'ping',
    ]);
    expect(pingArgv('10.5.2.2', 1, 1, '/proc/42/ns/net').slice(0, 4)).toEqual([
      'nsenter',
      '--net=/proc/42/ns/net',
      '--',
      'ping',
    ]);
  });
});

describe('host and etcd readers (pure parts)', () => {
  it('reads tx-checksum-ip-generic from ethtool -k', () => {
    const text =
      'Features for weft.1:\nrx-checksumming: on\ntx-checksumming: on\n\ttx-checksum-ipv4: off [fixed]\n\ttx-checksum-ip-generic: on\n';
    expect(parseEthtoolFeature(text, 'tx-checksum-ip-generic')).toBe('on');
    expect(parseEthtoolFeature(text, 'tx-checksum-ipv4')).toBe('off');
    expect(parseEthtoolFeature('', 'tx-checksum-ip-generic')).toBeNull();
  });

  it('finds forward chains with a drop policy in nft -j list chains', () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        {
          chain: {
            family: 'ip',
            table: 'filter',
            name: 'FORWARD',
            hook: 'forward',
            prio: 0,
            policy: 'drop',
          },
        },
        {
          chain: {
            family: 'ip',
            table: 'weft',
            name: 'forward',
            hook: 'forward',
            prio: 0,
            policy: 'accept',
          },
        },
        {
          chain: {
            family: 'ip',
            table: 'filter',
            name: 'INPUT',
            hook: 'input',
            prio: 0,
            policy: 'drop',
          },
        },
      ],
    });
    expect(forwardDropChains(json)).toEqual(['ip filter FORWARD']);
    expect(forwardDropChains('not json')).toEqual([]);
  });

  it('turns registry entries into records: leases, reservations and hostile values', () => {
    const value =
      '{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:00:00:00:00:02"}}';
    const now = 1_000_000;
    const r = toRecord(
      { key: '10.5.2.0-24', value, leaseId: '42', modRevision: '9', createRevision: '9' },
      100,
      now,
    );
    expect(r).toMatchObject({ reserved: false, expiresIn: 100, problem: null });
    expect(r.lease?.expiration?.getTime()).toBe(now + 100_000);
    expect(
      toRecord(
        { key: '10.5.2.0-24', value, leaseId: null, modRevision: '9', createRevision: '9' },
        null,
        now,
      ),
    ).toMatchObject({ reserved: true, expiresIn: null });
    expect(
      toRecord(
        {
          key: '10.5.2.0-24',
          value: '{"PublicIP":5}',
          leaseId: '1',
          modRevision: '1',
          createRevision: '1',
        },
        5,
        now,
      ),
    ).toMatchObject({ lease: null, problem: expect.stringMatching(/PublicIP/) });
    expect(
      toRecord(
        { key: '../../etc', value, leaseId: '1', modRevision: '1', createRevision: '1' },
        5,
        now,
      ).problem,
    ).toMatch(/not a subnet key/);
  });

  it('sorts subnet keys in address order', () => {
    expect(
      ['10.5.10.0-24', '10.5.2.0-24', '10.5.2.0-24&fc00::-64', '9.0.0.0-8'].sort(compareKeys),
    ).toEqual(['9.0.0.0-8', '10.5.2.0-24', '10.5.2.0-24&fc00::-64', '10.5.10.0-24']);
  });
});

describe('etcd error text', () => {
  it('drops the repetition gRPC adds', () => {
    expect(
      shortEtcdError(
        'etcd get config: 14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379. Resolution note: : 14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379. Resolution note: ',
      ),
    ).toBe(
      'etcd get config: 14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379.',
    );
    expect(shortEtcdError('x'.repeat(1000))).toHaveLength(300);
  });
});

describe('/proc/net/snmp', () => {
  it('reads Udp InCsumErrors', () => {
    const text =
      'Ip: Forwarding DefaultTTL\nIp: 1 64\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\nUdp: 188 0 3 189 0 0 7 0 0\nUdpLite: InDatagrams InCsumErrors\nUdpLite: 0 0\n';
    expect(parseUdpCsumErrors(text)).toBe(7);
    expect(parseUdpCsumErrors('Ip: a\nIp: 1\n')).toBeNull();
  });
});
