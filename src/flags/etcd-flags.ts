/**
 * The etcd flags weftd and weftctl share (names, kinds, defaults, help, checks): one table, so the two
 * programs reach the same etcd and describe it in the same words. Each program spreads these rows into
 * its own table (weftctl marks them `shared`: also read from `WEFTD_`/`FLANNELD_` variables), and both
 * check `--etcd-endpoints` with `parseEtcdEndpoints`. Pure.
 */
import { DEFAULT_ETCD_PREFIX } from '../lease/lease.js';
import { DEFAULT_SUBNET_FILE } from '../lease/subnet-env.js';
import { optionError } from './go-flags.js';

/** The values the etcd flags fill, in both programs' option objects. */
export interface EtcdOptions {
  readonly etcdEndpoints: readonly string[];
  readonly etcdPrefix: string;
  readonly etcdKeyfile: string | null;
  readonly etcdCertfile: string | null;
  readonly etcdCafile: string | null;
  readonly etcdUsername: string | null;
  readonly etcdPassword: string | null;
  readonly subnetFile: string;
}

/** The option keys the etcd flags fill; both programs' option objects carry these names. */
export type EtcdOptionKey = keyof EtcdOptions;

export interface EtcdFlagRow {
  readonly name: string;
  readonly key: EtcdOptionKey;
  readonly kind: 'string';
  readonly def: string | null;
  readonly help: string;
  readonly check?: (value: never) => string | undefined;
}

export const DEFAULT_ETCD_ENDPOINT = 'http://127.0.0.1:2379';

const file = (what: string): string => `${what} (PEM file)`;

export const ETCD_FLAGS: readonly EtcdFlagRow[] = [
  {
    name: 'etcd-endpoints',
    key: 'etcdEndpoints',
    kind: 'string',
    def: DEFAULT_ETCD_ENDPOINT,
    help: 'comma-separated etcd v3 endpoints (http:// or https://)',
  },
  {
    name: 'etcd-prefix',
    key: 'etcdPrefix',
    kind: 'string',
    def: DEFAULT_ETCD_PREFIX,
    help: 'etcd key prefix of the network config and the leases',
    check: (v: string) =>
      v.startsWith('/') && !/\s/.test(v)
        ? undefined
        : 'must be an absolute key like /coreos.com/network',
  },
  {
    name: 'etcd-keyfile',
    key: 'etcdKeyfile',
    kind: 'string',
    def: null,
    help: file('TLS client key'),
  },
  {
    name: 'etcd-certfile',
    key: 'etcdCertfile',
    kind: 'string',
    def: null,
    help: file('TLS client certificate'),
  },
  {
    name: 'etcd-cafile',
    key: 'etcdCafile',
    kind: 'string',
    def: null,
    help: file('TLS CA bundle to verify etcd'),
  },
  {
    name: 'etcd-username',
    key: 'etcdUsername',
    kind: 'string',
    def: null,
    help: 'etcd v3 auth user',
  },
  {
    name: 'etcd-password',
    key: 'etcdPassword',
    kind: 'string',
    def: null,
    help: 'etcd v3 auth password',
  },
  {
    name: 'subnet-file',
    key: 'subnetFile',
    kind: 'string',
    def: DEFAULT_SUBNET_FILE,
    help: "the subnet.env weftd writes for the CNI plugin (flannel's format)",
    check: (v: string) => (v.length > 0 ? undefined : 'must be a file path'),
  },
];

/** An http(s) base URL without a path (the etcd client appends `/v3/...` to it). */
export const BASE_URL = /^https?:\/\/[^/\s]+\/?$/;

/**
 * `--etcd-endpoints` (or the variable named by `source`): comma-separated http(s)://host:port URLs,
 * blanks around commas ignored. Throws E_OPTION_INVALID naming `source`, the bad entry and the form.
 */
export function parseEtcdEndpoints(text: string, source: string): readonly string[] {
  const list = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (list.length === 0)
    throw optionError(`${source}: no endpoint given (e.g. ${DEFAULT_ETCD_ENDPOINT})`);
  for (const e of list)
    if (!BASE_URL.test(e) || !URL.canParse(e))
      throw optionError(
        `${source}: ${JSON.stringify(e)} is not like http://host:port or https://host:port`,
      );
  return Object.freeze(list);
}
