/**
 * A small JSON-schema-like validator for weftctl's `--json` output (no new packages), and the schemas of
 * every command's document. Shared by the unit tests and the e2e test. Objects are closed: a key that
 * the schema does not list is an error, so the documents cannot grow unnoticed.
 */
import { expect } from 'vitest';

export type Schema =
  | 'string'
  | 'number'
  | 'integer'
  | 'boolean'
  | 'null'
  | 'any'
  | { readonly enum: readonly (string | number | boolean | null)[] }
  | { readonly anyOf: readonly Schema[] }
  | { readonly array: Schema }
  | { readonly object: Readonly<Record<string, Schema>>; readonly optional?: readonly string[] };

/**
 * weftctl's stdout as a document when `args` ask for --json (else {}), checked against `schema`, or
 * against ERROR_SCHEMA when it is an error document.
 */
export function checkedJson(
  args: readonly string[],
  stdout: string,
  schema?: Schema,
): Record<string, unknown> {
  if (!args.includes('--json')) return {};
  const json = JSON.parse(stdout) as Record<string, unknown>;
  const isError =
    json['ok'] === false && typeof json['error'] === 'object' && json['error'] !== null;
  const s = isError ? ERROR_SCHEMA : schema;
  if (s) expect(validate(json, s), `--json of weftctl ${args.join(' ')}`).toEqual([]);
  return json;
}

/** Every problem found, as `path: what` (empty when `value` matches). */
export function validate(value: unknown, schema: Schema, path = '$'): string[] {
  if (schema === 'any') return [];
  if (typeof schema === 'string') {
    const ok =
      schema === 'null'
        ? value === null
        : schema === 'integer'
          ? Number.isInteger(value)
          : typeof value === schema && !(schema === 'number' && !Number.isFinite(value));
    return ok ? [] : [`${path}: want ${schema}, got ${JSON.stringify(value)?.slice(0, 80)}`];
  }
  if ('enum' in schema)
    return schema.enum.includes(value as never)
      ? []
      : [`${path}: ${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`];
  if ('anyOf' in schema) {
    const all = schema.anyOf.map((s) => validate(value, s, path));
    return all.some((e) => e.length === 0)
      ? []
      : [`${path}: matches none of: ${all.map((e) => e.join(', ')).join(' | ')}`];
  }
  if ('array' in schema) {
    if (!Array.isArray(value)) return [`${path}: want array`];
    return value.flatMap((v, i) => validate(v, schema.array, `${path}[${i}]`));
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return [`${path}: want object`];
  const obj = value as Record<string, unknown>;
  const errors: string[] = [];
  for (const [k, s] of Object.entries(schema.object)) {
    if (!(k in obj)) {
      if (!schema.optional?.includes(k)) errors.push(`${path}.${k}: missing`);
      continue;
    }
    errors.push(...validate(obj[k], s, `${path}.${k}`));
  }
  for (const k of Object.keys(obj))
    if (!(k in schema.object)) errors.push(`${path}.${k}: not in the schema`);
  return errors;
}

const str = 'string' as const;
const num = 'number' as const;
const int = 'integer' as const;
const bool = 'boolean' as const;
const nul = 'null' as const;
const orNull = (s: Schema): Schema => ({ anyOf: [s, nul] });

export const ERROR_SCHEMA: Schema = {
  object: { ok: { enum: [false] }, error: { object: { code: str, message: str } } },
};

export const LEASE_SCHEMA: Schema = {
  object: {
    key: str,
    subnet: orNull(str),
    subnet6: orNull(str),
    publicIp: orNull(str),
    publicIpv6: orNull(str),
    backendType: orNull(str),
    vtepMac: orNull(str),
    vni: orNull(int),
    reserved: bool,
    expiresInSeconds: orNull(num),
    problem: orNull(str),
  },
};

export const LEASES_SCHEMA: Schema = {
  object: { ok: bool, revision: str, leases: { array: LEASE_SCHEMA } },
};

const HEALTH: Schema = {
  object: { url: str, healthz: orNull(int), readyz: orNull(int), error: orNull(str) },
};

export const STATUS_SCHEMA: Schema = {
  object: {
    ok: bool,
    lease: orNull(LEASE_SCHEMA),
    etcd: {
      object: {
        endpoints: { array: str },
        prefix: str,
        reachable: bool,
        latencyMs: orNull(num),
        error: orNull(str),
      },
    },
    config: orNull({ object: { network: orNull(str), ipv6Network: orNull(str), backend: str } }),
    configError: orNull(str),
    running: { object: { backend: orNull(str), network: orNull(str) } },
    devices: {
      array: {
        object: {
          name: str,
          exists: bool,
          up: bool,
          mtu: orNull(int),
          mac: orNull(str),
          vni: orNull(int),
          port: orNull(int),
        },
      },
    },
    peers: { object: { leases: int, ok: int, faults: int } },
    weftd: orNull(HEALTH),
    subnetEnv: {
      object: {
        path: str,
        exists: bool,
        network: orNull(str),
        subnet: orNull(str),
        ipv6Network: orNull(str),
        subnet6: orNull(str),
        mtu: orNull(int),
        ipMasq: orNull(bool),
        error: orNull(str),
      },
    },
    problems: { array: str },
  },
};

export const VERDICTS = [
  'ok',
  'missing',
  'stale',
  'wrong-mac',
  'wrong-public-ip',
  'wrong-route',
  'refused',
  'skipped',
] as const;

export const PEER_SCHEMA: Schema = {
  object: {
    lease: orNull(str),
    family: { enum: [4, 6] },
    subnet: str,
    publicIp: orNull(str),
    vtepMac: orNull(str),
    route: orNull(str),
    neigh: orNull(str),
    fdb: orNull(str),
    verdict: { enum: VERDICTS },
    reason: orNull(str),
    problems: { array: str },
    fixes: { array: str },
  },
};

export const PEERS_SCHEMA: Schema = {
  object: { ok: bool, own: orNull(str), backend: str, peers: { array: PEER_SCHEMA } },
};

export const CHECK_SCHEMA: Schema = {
  object: {
    id: str,
    status: { enum: ['pass', 'warn', 'fail', 'skip'] },
    message: str,
    fixes: { array: str },
  },
};

export const DOCTOR_SCHEMA: Schema = {
  object: {
    ok: bool,
    own: orNull(str),
    summary: { object: { fail: int, warn: int, pass: int, skip: int } },
    checks: { array: CHECK_SCHEMA },
  },
};

const ENDPOINT: Schema = {
  object: { ip: str, lease: orNull(str), subnet: orNull(str), host: orNull(str), local: bool },
};

export const TRACE_SCHEMA: Schema = {
  object: {
    ok: bool,
    src: ENDPOINT,
    dst: ENDPOINT,
    verdict: { enum: ['ok', 'dropped', 'unknown'] },
    steps: {
      array: {
        object: {
          what: { enum: ['owner', 'route', 'neighbour', 'fdb', 'encap', 'deliver', 'note'] },
          ok: bool,
          text: str,
        },
      },
    },
    outer: orNull({
      object: {
        src: orNull(str),
        dst: str,
        protocol: { enum: ['udp'] },
        port: int,
        vni: int,
        innerDstMac: str,
      },
    }),
    missing: { array: str },
  },
};

export const PING_SCHEMA: Schema = {
  object: {
    ok: bool,
    target: str,
    from: orNull(str),
    transmitted: int,
    received: int,
    lossPercent: num,
    rttMs: orNull({ object: { min: num, avg: num, max: num, mdev: num } }),
    replies: { array: num },
    errors: { array: str },
  },
};

const CONFIG_SUMMARY: Schema = orNull({
  object: {
    network: orNull(str),
    subnetLen: int,
    subnetMin: orNull(str),
    subnetMax: orNull(str),
    ipv6Network: orNull(str),
    ipv6SubnetLen: int,
    backend: str,
  },
});

export const CONFIG_SCHEMA: Schema = {
  object: {
    ok: bool,
    source: { enum: ['etcd', 'argument'] },
    raw: orNull(str),
    written: bool,
    valid: bool,
    error: orNull(str),
    warnings: { array: str },
    config: CONFIG_SUMMARY,
  },
  optional: ['source', 'raw', 'written'],
};

export const LEASE_ACTION_SCHEMA: Schema = {
  object: {
    ok: bool,
    action: { enum: ['reserved', 'released', 'unchanged'] },
    key: str,
    subnet: str,
  },
};
