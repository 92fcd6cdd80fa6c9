/**
 * `weftctl leases` (every key below `<prefix>/subnets/`, reservations marked) and
 * `weftctl lease reserve <subnet> --public-ip=<ip>` / `weftctl lease release <subnet>`.
 *
 * A reservation is flannel's: a subnet key with no etcd lease (docs/flannel-compat.md §5). `reserve` turns an
 * existing lease into one (same value, lease detached, compare-and-swap) or creates it for `--public-ip`;
 * the subnet must fit the network config. `release` deletes a reservation (compare-and-swap); if its
 * host is running, weftd re-creates the key with a normal TTL.
 */
import { optionError } from '../../flags/go-flags.js';
import { parseVxlanBackendData } from '../../backend-vxlan/backend-data.js';
import { WeftError } from '../../errors.js';
import { peerAddressProblem } from '../../backend/peer-check.js';
import { isIp4 } from '../../ip/ip4.js';
import { encodeLeaseAttrs } from '../../lease/codec.js';
import { isCompatible } from '../../subnet/allocator.js';
import { parseNetworkConfig } from '../../subnet/config.js';
import { makeSubnetKey, parseSubnetKey } from '../../subnet/keys.js';
import { decodeEntryValue } from '../../subnet/lease-entry.js';
import { listLeases, withRegistry, type LeaseRecord } from '../etcd-view.js';
import { EXIT } from '../exit-codes.js';
import { formatDuration, keyValues, table, type Style } from '../render.js';
import type { CommandContext, CommandOutput } from './context.js';

/** The JSON form of one lease record (shared by leases, status). */
export function leaseJson(r: LeaseRecord): Record<string, unknown> {
  const l = r.lease;
  const data = l ? parseVxlanBackendData(l.attrs.backendData) : null;
  return {
    key: r.key,
    subnet: l?.subnet ?? null,
    subnet6: l?.subnet6 ?? null,
    publicIp: l?.attrs.publicIp ?? null,
    publicIpv6: l?.attrs.publicIpv6 ?? null,
    backendType: l ? l.attrs.backendType || 'udp' : null,
    vtepMac: data?.ok ? data.value.vtepMac : null,
    vni: data?.ok ? data.value.vni : null,
    reserved: r.reserved,
    expiresInSeconds: r.expiresIn,
    problem: r.problem,
  };
}

function leasesTable(style: Style, records: readonly LeaseRecord[]): string {
  return table(
    style,
    ['subnet', 'public ip', 'backend', 'vtep mac', 'expires in', 'key'],
    records.map((r) => {
      const j = leaseJson(r);
      const subnet = [j['subnet'], j['subnet6']].filter(Boolean).join(' ') || '-';
      if (r.problem)
        return [subnet, '-', '-', '-', { text: 'invalid', tone: 'bad' }, `${r.key}: ${r.problem}`];
      return [
        subnet,
        [j['publicIp'], j['publicIpv6']].filter((x) => x && x !== '0.0.0.0').join(' ') || '-',
        String(j['backendType']),
        (j['vtepMac'] as string | null) ?? '-',
        r.reserved ? { text: 'never (reserved)', tone: 'warn' } : formatDuration(r.expiresIn),
        r.key,
      ];
    }),
  );
}

export async function leasesCommand(ctx: CommandContext): Promise<CommandOutput> {
  return withRegistry(ctx.options, async (reg) => {
    const { records, revision } = await listLeases(reg);
    const invalid = records.filter((r) => r.problem !== null).length;
    const ok = invalid === 0;
    return {
      exitCode: ok ? EXIT.ok : EXIT.problem,
      json: { ok, revision, leases: records.map(leaseJson) },
      human:
        leasesTable(ctx.style, records) +
        `${records.length} key${records.length === 1 ? '' : 's'}, ${records.filter((r) => r.reserved && r.problem === null).length} reserved` +
        (invalid ? `, ${invalid} invalid` : '') +
        '\n',
    };
  });
}

function subnetArg(ctx: CommandContext): { key: string; subnet: string } {
  const text = ctx.options.args[1];
  if (!text)
    throw optionError(
      `lease ${ctx.options.args[0]}: give the subnet, e.g. 10.5.7.0/24 or its key 10.5.7.0-24`,
    );
  const pair = parseSubnetKey(text.replace('/', '-').replace(/\/(\d+)$/, '-$1'));
  if (!pair)
    throw optionError(
      `lease ${ctx.options.args[0]}: ${JSON.stringify(text)} is not a subnet like 10.5.7.0/24 (host bits zero)`,
    );
  return { key: makeSubnetKey(pair.subnet, pair.subnet6), subnet: pair.subnet };
}

export async function leaseCommand(ctx: CommandContext): Promise<CommandOutput> {
  const sub = ctx.options.args[0];
  if (sub !== 'reserve' && sub !== 'release')
    throw optionError(
      'lease: use `weftctl lease reserve <subnet> --public-ip=<ip>` or `weftctl lease release <subnet>`',
    );
  const { key, subnet } = subnetArg(ctx);
  const publicIp = ctx.options.publicIp;
  if (publicIp !== null && !isIp4(publicIp))
    throw optionError(`--public-ip=${publicIp} is not an IPv4 address`);
  // weftd's own rule for a peer's address: a reservation it would refuse reserves nothing
  const badIp = publicIp === null ? null : peerAddressProblem(publicIp, []);
  if (badIp !== null) throw optionError(`--public-ip: ${badIp}; weftd refuses such a lease`);
  return withRegistry(ctx.options, async (reg) => {
    const existing = await reg.get(key);
    // another writer changed the key between our read and our compare-and-swap
    const raced = (what: string): WeftError =>
      new WeftError('E_LEASE_CONFLICT', `lease ${sub}: ${key} ${what}; run it again`);
    const done = (action: string, message: string): CommandOutput => ({
      exitCode: EXIT.ok,
      json: { ok: true, action, key, subnet },
      human: keyValues(ctx.style, [
        ['subnet', subnet],
        ['key', key],
        ['result', { text: message, tone: 'ok' }],
      ]),
    });
    if (sub === 'release') {
      if (!existing)
        throw new WeftError('E_CONFIG_NOT_FOUND', `lease release: no key ${key} in etcd`);
      if (existing.leaseId !== null)
        throw optionError(
          `lease release: ${key} is a normal lease (expires with its TTL), not a reservation`,
        );
      if (!(await reg.deleteIf(key, existing.modRevision)))
        throw raced('changed while releasing it');
      return done(
        'released',
        'reservation deleted (a running weftd on that host re-creates it with a TTL)',
      );
    }
    const configText = await reg.getConfig();
    if (configText === null)
      throw new WeftError('E_CONFIG_NOT_FOUND', 'lease reserve: no network config in etcd');
    const config = parseNetworkConfig(configText);
    const pair = parseSubnetKey(key)!;
    if (!isCompatible(config, pair))
      throw optionError(
        `lease reserve: ${subnet} does not fit the network (${config.network}, SubnetLen ${config.subnetLen}, ${config.subnetMin}–${config.subnetMax})`,
      );
    if (existing) {
      if (existing.oversize !== undefined)
        throw new WeftError(
          'E_LEASE_INVALID',
          `lease reserve: ${key} holds a ${existing.oversize}-byte value, no lease: delete it (etcdctl del) and reserve again`,
        );
      let holder: string | null;
      try {
        holder = decodeEntryValue(existing).publicIp;
      } catch (err) {
        // a garbage value is no reservation for anyone: weftd refuses the key
        throw new WeftError(
          'E_LEASE_INVALID',
          `lease reserve: ${key} holds an invalid value (${(err as Error).message}): delete it (etcdctl del) and reserve again`,
        );
      }
      if (publicIp !== null && holder !== null && holder !== publicIp)
        throw new WeftError(
          'E_LEASE_CONFLICT',
          `lease reserve: ${key} is held by ${holder}, not ${publicIp}; release it first`,
        );
      if (existing.leaseId === null) return done('unchanged', 'already reserved');
      const r = await reg.replaceIf(key, existing.value, null, existing.modRevision);
      if (!r.ok) throw raced('changed while reserving it');
      return done('reserved', `reserved for ${holder ?? 'its holder'} (never expires)`);
    }
    if (publicIp === null)
      throw optionError(
        `lease reserve: ${key} is free: give --public-ip=<ip> of the host it is for`,
      );
    const value = encodeLeaseAttrs({ publicIp, publicIpv6: null, backendType: '' });
    const r = await reg.createIfAbsent(key, value, null);
    if (!r.ok) throw raced('was taken meanwhile');
    return done('reserved', `reserved for ${publicIp} (never expires)`);
  });
}
