/**
 * Per-device IPv6 sysctls, written in the device's netns: `accept_ra = 0` on the IPv6 VXLAN device
 * (flannel does the same; router advertisements have no business on an overlay device). /proc/sys/net
 * belongs to the netns of the thread that opens the file, so a netns other than ours is entered for the
 * synchronous write only (docs/design.md C14).
 */
import { writeFileSync } from 'node:fs';
import { IFNAME } from '../backend/backend-config.js';
import { inNetns } from '../netns/netns.js';

export function disableAcceptRa(dev: string, netns?: string): void {
  if (!IFNAME.test(dev)) throw new TypeError(`invalid interface name ${JSON.stringify(dev)}`);
  const write = (): void => writeFileSync(`/proc/sys/net/ipv6/conf/${dev}/accept_ra`, '0\n');
  if (netns) inNetns(netns, write);
  else write();
}
