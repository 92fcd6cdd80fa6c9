import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/** The machine id the backend tests write, so every run derives the same VTEP MACs from it. */
export const TEST_MACHINE_ID = '0123456789abcdef0123456789abcdef';

/**
 * A fresh temp dir (a backend's state dir) holding a `machine-id` file with TEST_MACHINE_ID; removed
 * after the test file's tests.
 */
export function useStateDir(prefix: string): { dir: string; machineId: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const machineId = join(dir, 'machine-id');
  writeFileSync(machineId, `${TEST_MACHINE_ID}\n`);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, machineId };
}
