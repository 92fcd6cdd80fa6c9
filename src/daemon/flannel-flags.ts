/**
 * flannel command lines weftd meets on migrated hosts (docs/migration-from-flannel.md): flanneld's klog
 * flags (`-v=N`, `--vmodule`, `--logtostderr`, …) are taken off argv and turned into warnings, so a copied
 * unit does not exit 2; the Kubernetes subnet manager (`--kube-subnet-mgr`, FLANNELD_KUBE_SUBNET_MGR=true)
 * is refused with a clear message, never silently ignored: weft leases from etcd only. Pure: no I/O.
 */
import { ConfigError } from '../errors.js';
import { parseGoBool } from '../flags/go-flags.js';

/** klog's flags as flanneld registers them; the bool ones take no separate value word. */
const KLOG_BOOL = new Set([
  'logtostderr',
  'alsologtostderr',
  'add_dir_header',
  'skip_headers',
  'skip_log_headers',
  'one_output',
]);
const KLOG_VALUE = new Set([
  'v',
  'vmodule',
  'log_dir',
  'log_file',
  'log_file_max_size',
  'stderrthreshold',
  'log_backtrace_at',
]);

export interface FlannelFlagsResult {
  /** argv without the klog flags (and their value words). */
  readonly argv: readonly string[];
  /** One line per klog flag dropped, for the log. */
  readonly warnings: readonly string[];
}

function kubeRefusal(source: string): ConfigError {
  return new ConfigError(
    `${source} asks for flannel's Kubernetes subnet manager, which weft does not have: weft leases ` +
      'subnets from etcd. Remove it and give --etcd-endpoints (docs/migration-from-flannel.md)',
    { code: 'E_OPTION_INVALID' },
  );
}

/**
 * Drops klog flags from `argv` (with a warning each) and refuses the Kubernetes subnet manager.
 * Throws ConfigError E_OPTION_INVALID (exit 2) for `--kube-subnet-mgr[=true]` or
 * FLANNELD_KUBE_SUBNET_MGR / WEFTD_KUBE_SUBNET_MGR set to a true value.
 */
export function acceptFlannelFlags(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): FlannelFlagsResult {
  const out: string[] = [];
  const warnings: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const m = /^--?([A-Za-z_][\w-]*)(?:=(.*))?$/s.exec(arg);
    if (!m) {
      out.push(arg);
      continue;
    }
    const name = m[1]!;
    const inline = m[2];
    if (name === 'kube-subnet-mgr') {
      if (inline === undefined || parseGoBool('--kube-subnet-mgr', inline))
        throw kubeRefusal('--kube-subnet-mgr');
      continue; // --kube-subnet-mgr=false asks for what weft does anyway
    }
    if (KLOG_BOOL.has(name) || KLOG_VALUE.has(name)) {
      let shown = arg;
      if (KLOG_VALUE.has(name) && inline === undefined && i + 1 < argv.length) {
        shown = `${arg} ${argv[i + 1]}`;
        i++;
      }
      warnings.push(
        `flannel's klog flag ${shown} is accepted and ignored: weftd logs JSON lines on stderr; ` +
          'use --log-level=debug|info|warn|error',
      );
      continue;
    }
    out.push(arg);
  }
  for (const name of ['WEFTD_KUBE_SUBNET_MGR', 'FLANNELD_KUBE_SUBNET_MGR']) {
    const v = env[name];
    if (v !== undefined && v !== '' && parseGoBool(`environment variable ${name}`, v)) {
      throw kubeRefusal(`environment variable ${name}=${v}`);
    }
  }
  return { argv: out, warnings };
}
