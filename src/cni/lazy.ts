/**
 * node:child_process loaded on first use: VERSION (sent by runtimes for every plugin of every conflist on
 * every command) never needs it, and loading it is a measurable part of the plugin's start-up. (Built-ins
 * resolve from any base, so `createRequire('/')` works in the ESM build and the CommonJS bundle alike.)
 */
import { createRequire } from 'node:module';

type Spawn = typeof import('node:child_process').spawn;
let spawnFn: Spawn | undefined;

export function lazySpawn(): Spawn {
  spawnFn ??= (createRequire('/')('node:child_process') as typeof import('node:child_process'))
    .spawn;
  return spawnFn;
}
