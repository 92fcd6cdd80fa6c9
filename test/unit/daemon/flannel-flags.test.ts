// flanneld's klog flags are dropped with a warning; the Kubernetes subnet manager is refused (issue 14).
import { describe, expect, it } from 'vitest';
import { acceptFlannelFlags } from '../../../src/daemon/flannel-flags.js';
import { parseOptions } from '../../../src/daemon/options.js';

describe('flannel flags on a weftd command line', () => {
  it('drops -v=N, --vmodule v, --logtostderr and keeps weftd flags', () => {
    const r = acceptFlannelFlags(
      ['-v=2', '--iface=eth0', '--vmodule', 'main=3', '--logtostderr', '-v', '4', '--ip-masq'],
      {},
    );
    expect(r.argv).toEqual(['--iface=eth0', '--ip-masq']);
    expect(r.warnings).toHaveLength(4);
    expect(r.warnings[0]).toMatch(/klog flag -v=2 is accepted and ignored.*--log-level/);
    expect(r.warnings[1]).toContain('--vmodule main=3');
    expect(r.warnings[3]).toContain('-v 4');
    // what is left parses as weftd options (a flannel unit's ExecStart no longer exits 2)
    expect(parseOptions(r.argv, {}).ipMasq).toBe(true);
  });

  it('a bool klog flag does not swallow the next flag', () => {
    expect(acceptFlannelFlags(['--logtostderr', '--ip-masq'], {}).argv).toEqual(['--ip-masq']);
    expect(acceptFlannelFlags(['--alsologtostderr=true', '-iface=eth1'], {}).argv).toEqual([
      '-iface=eth1',
    ]);
  });

  it('refuses the Kubernetes subnet manager as a flag or in the environment', () => {
    expect(() => acceptFlannelFlags(['--kube-subnet-mgr'], {})).toThrow(
      /--kube-subnet-mgr asks for flannel's Kubernetes subnet manager.*weft leases subnets from etcd/,
    );
    expect(() => acceptFlannelFlags(['-kube-subnet-mgr=true'], {})).toThrow(/Kubernetes/);
    expect(() => acceptFlannelFlags([], { FLANNELD_KUBE_SUBNET_MGR: 'true' })).toThrow(
      /FLANNELD_KUBE_SUBNET_MGR=true.*--etcd-endpoints/,
    );
    expect(() => acceptFlannelFlags([], { WEFTD_KUBE_SUBNET_MGR: '1' })).toThrow(/Kubernetes/);
    expect(acceptFlannelFlags(['--kube-subnet-mgr=false'], {}).argv).toEqual([]);
    expect(acceptFlannelFlags([], { FLANNELD_KUBE_SUBNET_MGR: 'false' }).argv).toEqual([]);
    expect(() => acceptFlannelFlags([], { FLANNELD_KUBE_SUBNET_MGR: 'maybe' })).toThrow(
      /must be true or false/,
    );
  });

  it('leaves unknown flags for parseOptions to reject, and stops at --', () => {
    expect(acceptFlannelFlags(['--nope', '--', '-v=1'], {}).argv).toEqual(['--nope', '--', '-v=1']);
  });
});
