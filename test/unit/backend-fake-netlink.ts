/**
 * A recording fake NetlinkOps for unit tests of pure backend logic (design.md C15): keeps routes,
 * neighbours, FDB entries, links and addresses in maps with the kernel's replace/delete semantics,
 * records every mutating call in order, and can be told to fail chosen calls with a NetlinkError.
 * The real façade is tested against the kernel in test/integration/netlink-facade.test.ts.
 */
import {
  NetlinkError,
  ipFamily,
  parseCidr,
  type AddrEntry,
  type FdbEntry,
  type LinkEvent,
  type LinkInfo,
  type Mutation,
  type NeighEntry,
  type NetlinkOps,
  type RouteEntry,
} from '../../src/netlink/index.js';

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
    if (existing && existing.kind === 'vxlan' && existing.vxlan?.vni === spec.vni) {
      const link = { ...existing, mtu: spec.mtu, mac: spec.mac };
      this.links.set(spec.name, link);
      return {
        link,
        action: existing.mac === spec.mac && existing.mtu === spec.mtu ? 'reused' : 'updated',
      };
    }
    this.call('createVxlanLink', spec.name);
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
  async deleteLink(index: number): Promise<void> {
    this.call('deleteLink', String(index));
    for (const [n, l] of this.links) if (l.index === index) this.links.delete(n);
  }
  async setLinkUp(index: number): Promise<void> {
    this.call('setLinkUp', String(index));
    for (const [n, l] of this.links) if (l.index === index) this.links.set(n, { ...l, up: true });
  }
  async setLinkMtu(index: number, mtu: number): Promise<void> {
    this.call('setLinkMtu', `${index} ${mtu}`);
  }
  async setLinkMac(index: number, mac: string): Promise<void> {
    this.call('setLinkMac', `${index} ${mac}`);
  }
  async listAddrs(index: number, family: 4 | 6): Promise<AddrEntry[]> {
    return this.addrs.filter((a) => a.index === index && parseCidr(a.cidr).family === family);
  }
  async ensureAddr(index: number, cidr: string): Promise<string[]> {
    if (!this.addrs.some((a) => a.index === index && a.cidr === cidr)) {
      this.call('addAddr', `${cidr} dev ${index}`);
      this.addrs.push({ index, cidr });
    }
    return [];
  }
  async deleteAddr(index: number, cidr: string): Promise<void> {
    this.call('deleteAddr', `${cidr} dev ${index}`);
  }
  async routeReplace(r: Parameters<NetlinkOps['routeReplace']>[0]): Promise<void> {
    this.call('routeReplace', r.dst);
    this.routes.set(rk(r.dst, r.table), {
      family: parseCidr(r.dst).family,
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
  async routeList(family: 4 | 6, filter: { oif?: number } = {}): Promise<RouteEntry[]> {
    return [...this.routes.values()].filter(
      (r) => r.family === family && (filter.oif === undefined || r.oif === filter.oif),
    );
  }
  async neighReplace(n: Parameters<NetlinkOps['neighReplace']>[0]): Promise<void> {
    this.call('neighReplace', `${n.dst} ${n.mac}`);
    this.neighs.set(`${n.ifindex}|${n.dst}`, {
      family: ipFamily(n.dst),
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
    this.fdb.set(`${f.ifindex}|${f.mac}|${f.dst}`, { ...f, permanent: true });
  }
  async fdbDelete(f: Parameters<NetlinkOps['fdbDelete']>[0]): Promise<void> {
    this.call('fdbDelete', `${f.mac} ${f.dst}`);
    if (!this.fdb.delete(`${f.ifindex}|${f.mac}|${f.dst}`))
      throw new NetlinkError('E_NETLINK', 'ENOENT', 'fdbDelete', f.mac);
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
  }
}
