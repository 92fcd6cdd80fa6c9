/**
 * The backend registry (docs/design.md C3): one explicit map in the daemon, no registration by import side
 * effects. `defaultBackends()` (default-backends.ts) fills it with the backends of this build.
 */
import { ConfigError } from '../errors.js';
import type { BackendFactory } from '../backend/backend.js';

export type BackendRegistry = ReadonlyMap<string, BackendFactory>;

/** A registry from `entries`; names are stored lower-cased. */
export function createBackendRegistry(
  entries: Readonly<Record<string, BackendFactory>>,
): BackendRegistry {
  return new Map(Object.entries(entries).map(([k, v]) => [k.toLowerCase(), v]));
}

/** Looks `type` up lower-cased (like flannel); unknown → ConfigError E_UNKNOWN_BACKEND. */
export function lookupBackend(registry: BackendRegistry, type: string): BackendFactory {
  const name = type.toLowerCase();
  const factory = registry.get(name);
  if (!factory) {
    const known = [...registry.keys()].sort().join(', ') || 'none';
    throw new ConfigError(
      `unknown backend type: ${type}: set Backend.Type in the network config to one of ${known}`,
      { code: 'E_UNKNOWN_BACKEND', details: { type } },
    );
  }
  return factory;
}
