/** The netlink façade (docs/design.md C6): import from here. */
export { bytesToIp, bytesToMac, ipToBytes, macToBytes, type IpFamily } from './addr.js';
export * from './errors.js';
export * from './ops.js';
export {
  createNetlinkOps,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_MAX_IN_FLIGHT,
  DUMP_INTR_RETRIES,
  type NetlinkOpsOptions,
} from './rtnetlink.js';
