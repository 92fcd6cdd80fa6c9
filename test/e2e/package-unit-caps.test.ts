/**
 * The packaged weftd with the capabilities weftd.service gives it (CapabilityBoundingSet, read from the
 * shipped unit; no systemd runs here, so `setpriv` applies it), serving the packaged CNI shim run with a
 * runtime's full privileges. The kernel then refuses weftd a look at /proc/<pid>/root and
 * /proc/<pid>/ns/net of the shim or of init (ptrace access check), and setns (no CAP_SYS_ADMIN). The
 * host-netns guard (src/cni/host-netns.ts) must hold all the same: a DEL naming the host's own netns
 * and CNI_IFNAME=eth0 must not delete the host's eth0; and CHECK must work. On a scratch host
 * (deb-helpers.ts onScratchHost) in its own network namespace.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCaps } from '../helpers/require.js';
import { builtDeb, onScratchHost, scratchUplinkAndEtcd } from './deb-helpers.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'nft', 'cniPlugins');

const CNI = (cmd: string, id: string, netns: string, ifname = 'eth0') =>
  `echo '{"cniVersion":"1.0.0","name":"weftnet","type":"weft","delegate":{"bridge":"weftbr0"}}' | ` +
  `CNI_COMMAND=${cmd} CNI_CONTAINERID=${id} CNI_NETNS=${netns} CNI_IFNAME=${ifname} ` +
  `CNI_PATH=/usr/lib/cni /usr/lib/cni/weft`;

describe.skipIf(!runnable)("the packaged weftd with weftd.service's capabilities", () => {
  let out = '';
  let caps = '';
  let tmp: string;

  beforeAll(async () => {
    const deb = builtDeb();
    tmp = mkdtempSync(join(tmpdir(), 'weft-unitcaps-'));
    execFileSync('dpkg-deb', ['-x', deb, tmp]);
    const unit = readFileSync(join(tmp, 'lib/systemd/system/weftd.service'), 'utf8');
    const set = /^CapabilityBoundingSet=(.*)$/m.exec(unit)?.[1] ?? '';
    caps = set
      .split(/\s+/)
      .filter(Boolean)
      .map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)
      .join(',');
    const r = await onScratchHost(
      `${scratchUplinkAndEtcd('vxlan')}dpkg -i /tmp/${deb.split('/').at(-1)} >/dev/null 2>&1 || { echo "install failed"; exit 1; }
setpriv --bounding-set -all,${caps} --no-new-privs \\
  /usr/bin/weftd --etcd-endpoints=http://127.0.0.1:23790 --iface=eth0 >/tmp/weftd.log 2>&1 &
WPID=$!
for i in $(seq 200); do [ -f /run/flannel/subnet.env ] && break; sleep 0.1; done
echo "weftd CapEff $(sed -n 's/^CapEff:\\t//p' /proc/$WPID/status)"
ip netns add c1
touch /run/netns/host; mount --bind /proc/self/ns/net /run/netns/host
${CNI('ADD', 'c1', '/run/netns/c1')} >/dev/null; echo "ADD c1 exit $?"
${CNI('CHECK', 'c1', '/run/netns/c1')}; echo "CHECK c1 exit $?"
${CNI('ADD', 'h1', '/run/netns/host', 'eth9')}; rc=$?; echo; echo "ADD host exit $rc"
${CNI('DEL', 'h2', '/proc/1/ns/net')} 2>&1; echo "DEL host exit $?"
${CNI('DEL', 'h3', '/run/netns/host')} 2>&1; echo "DEL host bind exit $?"
ip -o link show eth0 >/dev/null 2>&1 && echo "host eth0 still there"
${CNI('DEL', 'c1', '/run/netns/c1')}; echo "DEL c1 exit $?"
kill $WPID
echo "@@ end"
`,
      [deb],
    );
    out = r.stdout + r.stderr;
    if (!out.includes('@@ end')) throw new Error(`scratch host script stopped: ${out}`);
  }, 300_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('runs weftd without CAP_SYS_ADMIN and CAP_SYS_PTRACE, as the unit does', () => {
    expect(caps).toBe('+net_admin,+net_raw,+net_bind_service');
    const eff = BigInt(`0x${/weftd CapEff ([0-9a-f]+)/.exec(out)?.[1] ?? '0'}`);
    expect(eff & (1n << 21n)).toBe(0n); // CAP_SYS_ADMIN
    expect(eff & (1n << 19n)).toBe(0n); // CAP_SYS_PTRACE
  });

  it("refuses ADD into the host's own netns and never deletes the host's eth0 on DEL", () => {
    expect(out).toContain('ADD c1 exit 0');
    expect(out).toMatch(/this host's own network namespace"[^\n]*\n\nADD host exit 1/);
    expect(out).toContain('DEL host exit 0');
    expect(out).toContain('DEL host bind exit 0');
    expect(out).toContain('host eth0 still there');
    expect(out).toContain('DEL c1 exit 0');
  });

  it('answers CHECK', () => {
    expect(out).toContain('CHECK c1 exit 0');
  });
});
