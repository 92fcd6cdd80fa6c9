/**
 * The shape of one doctor finding and its constructors, shared by the check modules (doctor.ts,
 * doctor-kernel.ts, doctor-firewall.ts). Pure.
 */
import type { ClockSample } from './etcd-view.js';
import type { ClusterView, LocalView } from './gather.js';
import type { HealthState, NftState } from './host-view.js';
import type { PeerRow } from './peers.js';

export interface Check {
  /** Stable id for scripts: 'etcd', 'mtu:weft.1', 'rules:ip', 'peer:<lease key>/<family>:<subnet>', … */
  readonly id: string;
  readonly status: 'pass' | 'warn' | 'fail' | 'skip';
  readonly message: string;
  /** Commands that fix the problem, in order (empty when it passes). */
  readonly fixes: readonly string[];
}

export interface UnderlayProbe {
  readonly lease: string;
  readonly publicIp: string;
  readonly reachable: boolean;
  readonly rttMs: number | null;
  /** Outer packet size probed with DF set (the uplink MTU), and whether it arrived; null = not probed. */
  readonly mtuProbe?: { readonly size: number; readonly ok: boolean } | null;
}

/** What the checks read: the views gather.ts collects, plus the clock, nft, weftd's health, the peer
 *  verdicts and the underlay probes. */
export interface DoctorInput
  extends
    Pick<ClusterView, 'etcd' | 'config' | 'configError' | 'records' | 'subnetEnv'>,
    Pick<LocalView, 'host' | 'hostError' | 'own'> {
  readonly clock: ClockSample | null;
  readonly nft: NftState | null;
  readonly health: HealthState | null;
  readonly peers: readonly PeerRow[];
  readonly probes: readonly UnderlayProbe[];
}

export const RESTART =
  'systemctl restart weftd   # weftd reconciles devices, peers and rules on start';
const check =
  (status: Check['status']) =>
  (id: string, message: string, fixes: string[] = []): Check => ({ id, status, message, fixes });
export const pass = check('pass');
export const warn = check('warn');
export const fail = check('fail');
export const skip = check('skip');
