/**
 * The package's life on a host, with dpkg for real (docs/install.md "Upgrades and removal"): on a
 * scratch copy of this Debian host (deb-helpers.ts onScratchHost: an overlay of `/`, no systemd
 * running), an older build is installed, the packaged weftd started (WireGuard backend, so it keeps a
 * private key) against a real etcd, a container added by the packaged CNI plugin, then the current
 * build installed over it with `dpkg -i`, removed with `dpkg -r` and purged with `dpkg -P`.
 * The project's rule: upgrading or removing never takes away what running containers depend on; purge
 * takes away what weft created, and only that.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCaps } from '../helpers/require.js';
import { builtDeb, onScratchHost, reversionedDeb, scratchUplinkAndEtcd } from './deb-helpers.js';

const runnable = requireCaps(
  'root',
  'netns',
  'etcd',
  'etcdctl',
  'ping',
  'nft',
  'cniPlugins',
  'tun',
);

/** What a running container depends on, and weft's state, without timestamps. */
const SNAPSHOT = `snap() {
  ip -o link show | awk -F': ' '{print $2}' | sort
  ip route; ip -6 route
  nft list ruleset
  for d in /var/lib/weft /var/lib/cni/weft /var/lib/cni/networks /run/weft /run/flannel; do
    [ -e "$d" ] && find "$d" -printf '%p %M %s\\n' | sort || echo "$d absent"
  done
  sha256sum /var/lib/weft/wireguard.key /run/flannel/subnet.env 2>&1
}`;

/** Marks a section of the script's output. */
const mark = (name: string) => `echo "@@ ${name}"`;

function sections(out: string): Record<string, string> {
  const r: Record<string, string> = {};
  for (const part of out.split('@@ ').slice(1)) {
    const nl = part.indexOf('\n');
    r[part.slice(0, nl)] = part.slice(nl + 1);
  }
  return r;
}

const CNI = (cmd: string, id: string) =>
  `echo '{"cniVersion":"1.0.0","name":"weftnet","type":"weft","delegate":{"bridge":"weftbr0"}}' | ` +
  `CNI_COMMAND=${cmd} CNI_CONTAINERID=${id} CNI_NETNS=/run/netns/${id} CNI_IFNAME=eth0 ` +
  `CNI_PATH=/usr/lib/cni /usr/lib/cni/weft`;

describe.skipIf(!runnable)('the weft package upgraded, removed and purged by dpkg', () => {
  let tmp: string;
  let old: string;
  let cur: string;
  let s: Record<string, string> = {};
  let out = '';

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'weft-lifecycle-'));
    cur = builtDeb();
    old = reversionedDeb(cur, '0.0.1', tmp);
    const script = `
${SNAPSHOT}
${scratchUplinkAndEtcd('wireguard')}dpkg -i /tmp/${old.split('/').at(-1)} >/dev/null 2>&1 || { echo "install failed"; exit 1; }
cat >> /etc/default/weftd <<'CONF'
WEFTD_ETCD_ENDPOINTS=http://127.0.0.1:23790
WEFTD_IFACE=eth0
WEFTD_IP_MASQ=true
CONF
(set -a; . /etc/default/weftd; exec /usr/bin/weftd $WEFTD_OPTS >/tmp/weftd.log 2>&1) &
WPID=$!
for i in $(seq 200); do [ -f /run/flannel/subnet.env ] && break; sleep 0.1; done
ip netns add c1; ip netns add c2
${CNI('ADD', 'c1')} >/tmp/add1.json || { echo "ADD c1 failed"; cat /tmp/add1.json /tmp/weftd.log; exit 1; }
${mark('before-upgrade')}
snap
${mark('upgrade')}
dpkg -i /tmp/${cur.split('/').at(-1)} >/tmp/upgrade.log 2>&1; echo "upgrade exit $?"
${mark('after-upgrade')}
snap
${mark('upgrade-checks')}
kill -0 $WPID && echo "weftd still runs"
grep -c '^WEFTD_IFACE=eth0$' /etc/default/weftd
${CNI('ADD', 'c2')} >/tmp/add2.json && echo "ADD c2 ok"
IP2=$(sed -n 's/.*"address":"\\([0-9.]*\\)\\/.*/\\1/p' /tmp/add2.json)
ip netns exec c1 ping -c1 -W2 "$IP2" >/dev/null && echo "c1 reaches c2"
${mark('before-remove')}
snap
${mark('remove')}
dpkg -r weft >/tmp/remove.log 2>&1; echo "remove exit $?"
${mark('after-remove')}
snap
${mark('remove-checks')}
kill -0 $WPID && echo "weftd still runs"
ls /etc/default/weftd /usr/lib/cni/weft /usr/lib/weft/weft /usr/bin/weftd 2>&1
ip netns exec c1 ping -c1 -W2 "$IP2" >/dev/null && echo "c1 reaches c2"
kill $WPID; wait $WPID
${mark('purge')}
dpkg -P weft >/tmp/purge.log 2>&1; echo "purge exit $?"
dpkg -l weft >/dev/null 2>&1 || echo "weft unknown to dpkg"
snap
ls /etc/default/weftd 2>&1
${mark('end')}
`;
    const r = await onScratchHost(script, [old, cur]);
    out = r.stdout;
    s = sections(out);
    if (!('end' in s)) throw new Error(`scratch host script stopped: ${r.stdout}\n${r.stderr}`);
  }, 300_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('an upgrade with weftd running keeps routes, rules, lease, key and CNI state, and leaves weftd running', () => {
    expect(s['upgrade']).toBe('upgrade exit 0\n');
    expect(s['after-upgrade']).toBe(s['before-upgrade']);
    // the state is really there: a WireGuard key, CNI state of c1, the lease's subnet.env
    expect(s['before-upgrade']).toMatch(/^\/var\/lib\/weft\/wireguard\.key -rw------- 45$/m);
    expect(s['before-upgrade']).toMatch(/^\/var\/lib\/cni\/weft\/weftnet\/c1@eth0 /m);
    expect(s['before-upgrade']).toMatch(/^10\.5\.\d+\.0\/24 dev weftbr0 /m);
    // no systemd: nothing restarts weftd; the one running keeps serving the new plugin's calls
    expect(s['upgrade-checks']).toBe('weftd still runs\n1\nADD c2 ok\nc1 reaches c2\n');
  });

  it('dpkg -r removes the programs and keeps the conffile, the state and the dataplane', () => {
    expect(s['remove']).toBe('remove exit 0\n');
    expect(s['after-remove']).toBe(s['before-remove']);
    const checks = s['remove-checks']!;
    expect(checks).toMatch(/^\/etc\/default\/weftd$/m);
    for (const gone of ['/usr/lib/cni/weft', '/usr/lib/weft/weft', '/usr/bin/weftd'])
      expect(checks).toContain(`cannot access '${gone}'`);
    expect(checks).toMatch(/c1 reaches c2/);
  });

  it("dpkg -P removes weft's conffile, state and CNI state, and leaves what others own", () => {
    const p = s['purge']!;
    expect(p).toContain('purge exit 0');
    expect(p).toContain('weft unknown to dpkg');
    for (const gone of ['/var/lib/weft', '/var/lib/cni/weft', '/run/weft'])
      expect(p).toContain(`${gone} absent`);
    expect(p).toContain("cannot access '/etc/default/weftd'");
    // host-local's reservations and flannel's subnet.env path are not weft's to delete; the
    // dataplane stays until `weftctl cleanup` or a reboot
    expect(p).toMatch(/^\/var\/lib\/cni\/networks\/weftnet /m);
    expect(p).toMatch(/^\/run\/flannel\/subnet\.env /m);
    expect(p).toMatch(/^10\.5\.\d+\.0\/24 dev weftbr0 /m);
  });

  it('dpkg -P succeeds with a read-only /run', async () => {
    const r = await onScratchHost(
      `dpkg -i /tmp/${cur.split('/').at(-1)} >/dev/null 2>&1 || exit 1
mkdir -p /run/weft && touch /run/weft/docker.env
dpkg -r weft >/dev/null 2>&1 || exit 2
mount -o remount,ro /run
dpkg -P weft 2>&1; echo "purge exit $?"
dpkg -l weft >/dev/null 2>&1 || echo "weft unknown to dpkg"
`,
      [cur],
    );
    expect(r.stdout).toContain('purge exit 0');
    expect(r.stdout).toContain('weft unknown to dpkg');
    expect(r.stdout).toContain('could not remove /run/weft');
  }, 300_000);
});
