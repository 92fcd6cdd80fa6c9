/**
 * The etcd flags weftd and weftctl share (names, kinds, defaults, help, checks): one table, so the two
 * programs reach the same etcd and describe it in the same words. Each program spreads these rows into
 * its own table (weftctl marks them `shared`: also read from `WEFTD_`/`FLANNELD_` variables). Pure data.
 */

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
export const DEFAULT_ETCD_PREFIX = '/coreos.com/network';
export const DEFAULT_SUBNET_FILE = '/run/flannel/subnet.env';

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
