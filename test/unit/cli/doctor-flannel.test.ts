// weftctl doctor's flannel-leftovers check (src/cli/doctor.ts).
import { describe, expect, it } from 'vitest';
import { flannelChecks } from '../../../src/cli/doctor.js';

describe('doctor: flannel leftovers', () => {
  it('passes on a clean host, fails naming each leftover and the fix', () => {
    expect(flannelChecks({ links: [], chains: [], nftTables: [] })).toEqual([
      { id: 'flannel', status: 'pass', message: 'no flannel leftovers on this host', fixes: [] },
    ]);
    const [c] = flannelChecks({
      links: [{ name: 'flannel.1', kind: 'vxlan', vni: 1, port: 8472 }],
      chains: [
        {
          family: 4,
          table: 'filter',
          chain: 'FLANNEL-FWD',
          rules: 2,
          jumps: ['-A FORWARD -j FLANNEL-FWD'],
        },
      ],
      nftTables: [],
    });
    expect(c!.status).toBe('fail');
    expect(c!.message).toMatch(/exit 8.*device flannel\.1.*FLANNEL-FWD/);
    expect(c!.fixes).toContain('weftctl cleanup --flannel --yes');
  });

  it('says nothing when the host could not be read', () => {
    expect(flannelChecks(null)).toEqual([]);
  });
});
