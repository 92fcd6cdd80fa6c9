/**
 * A recording fake NetlinkOps for unit tests of pure backend logic (docs/design.md C15): keeps routes,
 * neighbours, FDB entries, links and addresses in maps with the kernel's replace/delete semantics,
 * records every mutating call in order, and can be told to fail chosen calls with a NetlinkError.
 * Held to the real façade by the shared contract test/fakes/netlink.contract.ts (run against the kernel
 * in test/integration/netlink-contract.test.ts). Link and entry events are not generated: tests emit
 * them with `emitLink` and `emitEntry` (`mutes` records the entry watchers' mute calls).
 */
import {
  NetlinkError,
  type AddrEntry,
  type EntryEvent,
  type EntryWatch,
  type FdbEntry,
  type LinkEvent,
  type LinkInfo,
  type Mutation,
  type NeighEntry,
  type NetlinkOps,
  type RouteEntry,
} from '../../src/netlink/index.js';
import { cidrCovers } from '../../src/ip/index.js';
import { addrFamily, cidrParts } from '../../src/netlink/addr.js';
import { vxlanIncompatibility } from '../../src/netlink/linkinfo.js';

const rk = (dst: string, table = 254): string => `${table}|${dst}`;

export class FakeNetlink implements NetlinkOps {
  readonly calls: string[] = [];
  readonly routes = new Map<string, RouteEntry>();
  readonly neighs = new Map<string, NeighEntry>();
  readonly fdb = new Map<string, FdbEntry>();
  readonly links = new Map<string, LinkInfo>();
  readonly addrs: AddrEntry[] = [];
  private nextIndex = 10;
  private readonly listeners = new Set<(e: LinkEvent) => void>();
  private readonly entryListeners = new Set<(e: EntryEvent) => void>();
  /** Every `mute` call of an entry watcher, in order. */
  readonly mutes: boolean[] = [];
  /** Return an errno to make the call fail, e.g. `(op) => op === 'routeReplace' ? 'EINVAL' : null`. */
  failWith: (op: string, object: string) => string | null = () => null;

  private call(op: string, object: string): void {
    this.calls.push(`${op} ${object}`);
    const errno = this.failWith(op, object);
    if (errno) throw new NetlinkError('E_NETLINK', errno, op, object);
  }

  emitLink(e: LinkEvent): void {
    for (const l of this.listeners) l(e);
  }

  emitEntry(e: EntryEvent): void {
    for (const l of this.entryListeners) l(e);
  }

  addLink(name: string, extra: Partial<LinkInfo> = {}): LinkInfo {
    const link: LinkInfo = {
      index: this.nextIndex++,
      name,
      kind: null,
      mtu: 1500,
      mac: null,
      up: true,
      ...extra,
    };
    this.links.set(name, link);
    return link;
  }

  async getLink(name: string): Promise<LinkInfo | null> {
    return this.links.get(name) ?? null;
  }
  async getLinkByIndex(index: number): Promise<LinkInfo | null> {
    return [...this.links.values()].find((l) => l.index === index) ?? null;
  }
  async listLinks(): Promise<LinkInfo[]> {
    return [...this.links.values()];
  }
  async ensureVxlanLink(
    spec: Parameters<NetlinkOps['ensureVxlanLink']>[0],
  ): ReturnType<NetlinkOps['ensureVxlanLink']> {
    const existing = this.links.get(spec.name);
    if (existing && vxlanIncompatibility(existing, spec) === null) {
      if (existing.mtu === spec.mtu && existing.mac === spec.mac)
        return { link: existing, action: 'reused' };
      if (existing.mtu !== spec.mtu) await this.setLinkMtu(existing.index, spec.mtu);
      if (existing.mac !== spec.mac) await this.setLinkMac(existing.index, spec.mac);
      return { link: this.links.get(spec.name)!, action: 'updated' };
    }
    if (existing) await this.deleteLink(existing.index);
    this.call('createVxlanLink', spec.name);
    const clash = [...this.links.values()].some(
      (l) =>
        l.vxlan?.vni === spec.vni &&
        l.vxlan.port === spec.port &&
        l.vxlan.underlayIndex === spec.underlayIndex,
    );
    if (clash) throw new NetlinkError('E_NETLINK', 'EEXIST', 'createVxlanLink', spec.name);
    const link = this.addLink(spec.name, {
      kind: 'vxlan',
      mtu: spec.mtu,
      mac: spec.mac,
      up: false,
      vxlan: {
        vni: spec.vni,
        local: spec.local,
        underlayIndex: spec.underlayIndex,
        port: spec.port,
        learning: spec.learning,
        gbp: spec.gbp,
        group: null,
        l2miss: false,
        l3miss: false,
      },
    });
    return { link, action: existing ? 'recreated' : 'created' };
  }
  /** The link with `index`, or an ENODEV rejection of `op` (as the kernel answers). */
  private linkAt(index: number, op: string, object: string): LinkInfo {
    const link = [...this.links.values()].find((l) => l.index === index);
    if (!link) throw new NetlinkError('E_NETLINK', 'ENODEV', op, object);
    return link;
  }
  private setLink(index: number, change: Partial<LinkInfo>): void {
    const link = this.linkAt(index, 'setLink', `link ${index}`);
    this.links.set(link.name, { ...link, ...change });
  }
  /** Deleting a link drops everything on it, as the kernel does. */
  async deleteLink(index: number): Promise<void> {
    this.call('deleteLink', String(index));
    this.links.delete(this.linkAt(index, 'deleteLink', `link ${index}`).name);
    for (const [k, r] of this.routes) if (r.oif === index) this.routes.delete(k);
    for (const [k, n] of this.neighs) if (n.ifindex === index) this.neighs.delete(k);
    for (const [k, f] of this.fdb) if (f.ifindex === index) this.fdb.delete(k);
    this.addrs.splice(0, this.addrs.length, ...this.addrs.filter((a) => a.index !== index));
  }
  async setLinkUp(index: number): Promise<void> {
    this.call('setLinkUp', String(index));
    this.setLink(index, { up: true });
  }
  async setLinkMtu(index: number, mtu: number): Promise<void> {
    this.call('setLinkMtu', `${index} ${mtu}`);
    this.setLink(index, { mtu });
  }
  async setLinkMac(index: number, mac: string): Promise<void> {
    this.call('setLinkMac', `${index} ${mac}`);
    this.setLink(index, { mac });
  }
  async listAddrs(index: number, family: 4 | 6): Promise<AddrEntry[]> {
    return this.addrs.filter((a) => a.index === index && cidrParts(a.cidr).family === family);
  }
  async ensureAddr(
    index: number,
    cidr: string,
    strayWithin: readonly string[] = [],
  ): Promise<string[]> {
    const family = cidrParts(cidr).family;
    const strays = (await this.listAddrs(index, family)).filter(
      (a) => a.cidr !== cidr && strayWithin.some((net) => cidrCovers(net, a.cidr.split('/')[0]!)),
    );
    for (const a of strays) await this.deleteAddr(index, a.cidr);
    if (!this.addrs.some((a) => a.index === index && a.cidr === cidr)) {
      this.call('addAddr', `${cidr} dev ${index}`);
      this.addrs.push({ index, cidr });
    }
    return strays.map((a) => a.cidr);
  }
  async deleteAddr(index: number, cidr: string): Promise<void> {
    this.call('deleteAddr', `${cidr} dev ${index}`);
    const at = this.addrs.findIndex((a) => a.index === index && a.cidr === cidr);
    if (at < 0) throw new NetlinkError('E_NETLINK', 'EADDRNOTAVAIL', 'deleteAddr', cidr);
    this.addrs.splice(at, 1);
  }
  async routeReplace(r: Parameters<NetlinkOps['routeReplace']>[0]): Promise<void> {
    this.call('routeReplace', r.dst);
    if (!/^[0-9a-f.:]+\/\d+$/i.test(r.dst))
      throw new NetlinkError('E_NETLINK', 'EINVAL', 'routeReplace', r.dst);
    if (r.oif != null) this.linkAt(r.oif, 'routeReplace', r.dst);
    this.routes.set(rk(r.dst, r.table), {
      family: cidrParts(r.dst).family,
      dst: r.dst,
      gateway: r.gateway ?? null,
      oif: r.oif ?? null,
      onlink: r.onlink ?? false,
      table: r.table ?? 254,
      protocol: 'STATIC',
      type: 'UNICAST',
    });
  }
  async routeDelete(r: Parameters<NetlinkOps['routeDelete']>[0]): Promise<void> {
    this.call('routeDelete', r.dst);
    if (!this.routes.delete(rk(r.dst, r.table)))
      throw new NetlinkError('E_NETLINK', 'ESRCH', 'routeDelete', r.dst);
  }
  async routeList(
    family: 4 | 6,
    filter: { oif?: number; table?: number } = {},
  ): Promise<RouteEntry[]> {
    return [...this.routes.values()].filter(
      (r) =>
        r.family === family &&
        r.table === (filter.table ?? 254) &&
        (filter.oif === undefined || r.oif === filter.oif),
    );
  }
  async neighReplace(n: Parameters<NetlinkOps['neighReplace']>[0]): Promise<void> {
    this.call('neighReplace', `${n.dst} ${n.mac}`);
    this.linkAt(n.ifindex, 'neighReplace', n.dst);
    this.neighs.set(`${n.ifindex}|${n.dst}`, {
      family: addrFamily(n.dst),
      ifindex: n.ifindex,
      dst: n.dst,
      mac: n.mac,
      permanent: true,
    });
  }
  async neighDelete(n: { ifindex: number; dst: string }): Promise<void> {
    this.call('neighDelete', n.dst);
    if (!this.neighs.delete(`${n.ifindex}|${n.dst}`))
      throw new NetlinkError('E_NETLINK', 'ENOENT', 'neighDelete', n.dst);
  }
  async neighList(family: 4 | 6, ifindex?: number): Promise<NeighEntry[]> {
    return [...this.neighs.values()].filter(
      (n) => n.family === family && (ifindex === undefined || n.ifindex === ifindex),
    );
  }
  async fdbReplace(f: Parameters<NetlinkOps['fdbReplace']>[0]): Promise<void> {
    this.call('fdbReplace', `${f.mac} ${f.dst}`);
    this.linkAt(f.ifindex, 'fdbReplace', f.mac);
    // One remote per MAC on a VXLAN device: a replace with another dst moves the entry.
    this.fdb.set(`${f.ifindex}|${f.mac}`, { ...f, permanent: true });
  }
  async fdbDelete(f: Parameters<NetlinkOps['fdbDelete']>[0]): Promise<void> {
    this.call('fdbDelete', `${f.mac} ${f.dst}`);
    const key = `${f.ifindex}|${f.mac}`;
    const have = this.fdb.get(key);
    if (!have) throw new NetlinkError('E_NETLINK', 'ENOENT', 'fdbDelete', f.mac);
    // The kernel accepts deleting a (MAC, dst) pair the entry no longer has, and keeps the entry.
    if (have.dst === f.dst) this.fdb.delete(key);
  }
  async fdbList(ifindex: number): Promise<FdbEntry[]> {
    return [...this.fdb.values()].filter((f) => f.ifindex === ifindex);
  }
  async applyBatch(mutations: readonly Mutation[]): Promise<(NetlinkError | null)[]> {
    this.calls.push(`applyBatch ${mutations.length}`);
    return Promise.all(
      mutations.map(async (m) => {
        try {
          if ('route' in m)
            await (m.op === 'routeReplace'
              ? this.routeReplace(m.route)
              : this.routeDelete(m.route));
          else if (m.op === 'neighReplace') await this.neighReplace(m.neigh);
          else if (m.op === 'neighDelete') await this.neighDelete(m.neigh);
          else await (m.op === 'fdbReplace' ? this.fdbReplace(m.fdb) : this.fdbDelete(m.fdb));
          return null;
        } catch (err) {
          return err as NetlinkError;
        }
      }),
    );
  }
  subscribeLinks(listener: (e: LinkEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  watchEntries(listener: (e: EntryEvent) => void): EntryWatch {
    this.entryListeners.add(listener);
    return {
      mute: (on) => void this.mutes.push(on),
      close: () => void this.entryListeners.delete(listener),
    };
  }
  stats() {
    return {
      requests: this.calls.length,
      errors: 0,
      timeouts: 0,
      socketErrors: 0,
      inFlight: 0,
      queued: 0,
    };
  }
  close(): void {
    this.listeners.clear();
    this.entryListeners.clear();
  }
}
