/**
 * The backends compiled into this build (design.md C3): vxlan, host-gw (and udp once it exists).
 */
import { createBackendRegistry, type BackendRegistry } from './backends.js';

export function defaultBackends(): BackendRegistry {
  return createBackendRegistry({});
}
