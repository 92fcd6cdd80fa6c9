import { describe, expect, it } from 'vitest';
import {
  ensureIptablesForward,
  forwardScript,
  parseForward,
  type IptablesRunner,
} from '../../../src/firewall/iptables-forward.js';

describe('iptables forward fallback', () => {
  it('parses the FORWARD policy and our jumps', () => {
    expect(parseForward('-P FORWARD ACCEPT\n')).toEqual({ dropPolicy: false, jumps: 0 });
    expect(
      parseForward(
        '-P FORWARD DROP\n-A FORWARD -m comment --comment "weft forward" -j WEFT-FWD\n-A FORWARD -j DOCKER-USER\n',
      ),
    ).toEqual({ dropPolicy: true, jumps: 1 });
  });

  it('builds one restore transaction: chain flushed, flannel rules, the jump only when missing', () => {
    expect(forwardScript('10.5.0.0/16', true)).toBe(
      '*filter\n:WEFT-FWD - [0:0]\n' +
        '-A WEFT-FWD -s 10.5.0.0/16 -m comment --comment "weft forward" -j ACCEPT\n' +
        '-A WEFT-FWD -d 10.5.0.0/16 -m comment --comment "weft forward" -j ACCEPT\n' +
        '-I FORWARD 1 -m comment --comment "weft forward" -j WEFT-FWD\nCOMMIT\n',
    );
    expect(forwardScript('fd05::/48', false)).not.toContain('-I FORWARD');
  });

  it('does nothing without iptables or while FORWARD accepts; acts when it drops', async () => {
    const scripts: string[] = [];
    const runner = (forward: string | null, chain = ''): IptablesRunner => ({
      list: async (_f, c) => (c === 'FORWARD' ? forward : chain),
      restore: async (_f, s) => void scripts.push(s),
    });
    expect(await ensureIptablesForward(runner(null), 4, '10.5.0.0/16')).toBe(false);
    expect(await ensureIptablesForward(runner('-P FORWARD ACCEPT\n'), 4, '10.5.0.0/16')).toBe(
      false,
    );
    expect(scripts).toEqual([]);
    expect(await ensureIptablesForward(runner('-P FORWARD DROP\n'), 4, '10.5.0.0/16')).toBe(true);
    expect(scripts[0]).toContain('-I FORWARD 1');
    const jump = '-P FORWARD DROP\n-A FORWARD -m comment --comment "weft forward" -j WEFT-FWD\n';
    const intact =
      '-N WEFT-FWD\n-A WEFT-FWD -s 10.5.0.0/16 -m comment --comment "weft forward" -j ACCEPT\n' +
      '-A WEFT-FWD -d 10.5.0.0/16 -m comment --comment "weft forward" -j ACCEPT\n';
    expect(await ensureIptablesForward(runner(jump, intact), 4, '10.5.0.0/16')).toBe(false);
    expect(await ensureIptablesForward(runner(jump, '-N WEFT-FWD\n'), 4, '10.5.0.0/16')).toBe(true);
    expect(scripts[1]).not.toContain('-I FORWARD');
  });
});
