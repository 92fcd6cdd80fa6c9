import { describe, expect, it } from 'vitest';
import {
  ensureIptablesForward,
  forwardScript,
  parseForward,
  wantedRules,
  type IptablesRunner,
} from '../../../src/firewall/iptables-forward.js';

const scope = { network: '10.5.0.0/16', subnet: '10.5.1.0/24' };

describe('iptables forward fallback', () => {
  it('parses the FORWARD policy and our jumps', () => {
    expect(parseForward('-P FORWARD ACCEPT\n')).toEqual({ dropPolicy: false, jumps: 0 });
    expect(
      parseForward(
        '-P FORWARD DROP\n-A FORWARD -m comment --comment "weft forward" -j WEFT-FWD\n-A FORWARD -j DOCKER-USER\n',
      ),
    ).toEqual({ dropPolicy: true, jumps: 1 });
  });

  it('builds one restore transaction: chain flushed, scoped rules, the jump only when missing', () => {
    expect(forwardScript(scope, ['eth0'], true)).toBe(
      '*filter\n:WEFT-FWD - [0:0]\n' +
        '-A WEFT-FWD -s 10.5.0.0/16 ! -i eth0 -m comment --comment "weft forward" -j ACCEPT\n' +
        '-A WEFT-FWD -s 10.5.0.0/16 -d 10.5.1.0/24 -m comment --comment "weft forward" -j ACCEPT\n' +
        '-A WEFT-FWD ! -s 10.5.0.0/16 -d 10.5.0.0/16 -m comment --comment "weft forward" -j ACCEPT\n' +
        '-I FORWARD 1 -m comment --comment "weft forward" -j WEFT-FWD\nCOMMIT\n',
    );
    // cluster sources from the uplink are accepted only towards this host's subnet
    expect(forwardScript(scope, ['eth0'], true)).not.toMatch(/-s 10\.5\.0\.0\/16 -m comment/);
    expect(
      forwardScript({ network: 'fd05::/48', subnet: 'fd05:0:0:1::/64' }, [], false),
    ).not.toContain('-I FORWARD');
  });

  it('does nothing without iptables or while FORWARD accepts; acts when it drops', async () => {
    const scripts: string[] = [];
    const runner = (forward: string | null, chain = ''): IptablesRunner => ({
      list: async (_f, c) => (c === 'FORWARD' ? forward : chain),
      restore: async (_f, s) => void scripts.push(s),
    });
    expect(await ensureIptablesForward(runner(null), 4, scope, ['eth0'])).toBe(false);
    expect(await ensureIptablesForward(runner('-P FORWARD ACCEPT\n'), 4, scope, ['eth0'])).toBe(
      false,
    );
    expect(scripts).toEqual([]);
    expect(await ensureIptablesForward(runner('-P FORWARD DROP\n'), 4, scope, ['eth0'])).toBe(true);
    expect(scripts[0]).toContain('-I FORWARD 1');
    const jump = '-P FORWARD DROP\n-A FORWARD -m comment --comment "weft forward" -j WEFT-FWD\n';
    const intact = `-N WEFT-FWD\n${wantedRules(scope, ['eth0']).join('\n')}\n`;
    // a chain with flannel's old unscoped rules is replaced
    const old =
      '-N WEFT-FWD\n-A WEFT-FWD -s 10.5.0.0/16 -m comment --comment "weft forward" -j ACCEPT\n' +
      '-A WEFT-FWD -d 10.5.0.0/16 -m comment --comment "weft forward" -j ACCEPT\n';
    expect(await ensureIptablesForward(runner(jump, old), 4, scope, ['eth0'])).toBe(true);
    expect(await ensureIptablesForward(runner(jump, intact), 4, scope, ['eth0'])).toBe(false);
    expect(await ensureIptablesForward(runner(jump, '-N WEFT-FWD\n'), 4, scope, ['eth0'])).toBe(
      true,
    );
    expect(scripts[2]).not.toContain('-I FORWARD');
  });
});
