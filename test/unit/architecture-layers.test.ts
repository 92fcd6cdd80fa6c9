/**
 * docs/architecture.md's layer table is the `layers` table of eslint.config.js, row for row: a part's
 * "May import" column names exactly what lint lets it import, and only parts listed above it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error eslint.config.js is plain JavaScript outside the TypeScript project
import { backendDeps, layers } from '../../eslint.config.js';

const LAYERS = layers as Record<string, string[]>;
const BACKEND_DEPS = backendDeps as string[];

/** Each row of the table: the parts it names (`src/x/` or `src/x.ts`) and its "May import" cell. */
function tableRows(): { parts: string[]; imports: string }[] {
  const md = readFileSync(new URL('../../docs/architecture.md', import.meta.url), 'utf8');
  return md
    .split('\n')
    .filter((l) => l.startsWith('| `src/'))
    .map((l) => {
      const cells = l.split(' | ');
      const parts = [...cells[0]!.matchAll(/`src\/([a-z-]+)(?:\/|\.ts)`/g)].map((m) => m[1]!);
      return { parts, imports: cells[cells.length - 1]!.replace(/ \|$/, '').trim() };
    });
}

/** The cell as a set: "—", "a, b", "what `x` may import, and c, d" or "what the backends may import, and …". */
function cellParts(cell: string): string[] {
  if (cell === '—') return [];
  const m = /^what (?:`([a-z-]+)`|the backends) may import, and (.*)$/.exec(cell);
  const base = m ? (m[1] ? LAYERS[m[1]]! : BACKEND_DEPS) : [];
  const rest = m ? m[2]! : cell;
  return [...base, ...rest.split(', ').map((s) => s.trim())];
}

describe('docs/architecture.md layer table', () => {
  const rows = tableRows();

  it('lists every part of `layers`, once', () => {
    const listed = rows.flatMap((r) => r.parts);
    expect([...listed].sort()).toEqual(Object.keys(LAYERS).sort());
  });

  it("names exactly each part's allowed imports, all of them listed above it", () => {
    const order = rows.flatMap((r) => r.parts);
    for (const r of rows) {
      for (const part of r.parts) {
        expect(new Set(cellParts(r.imports)), `row of src/${part}`).toEqual(new Set(LAYERS[part]));
        for (const dep of LAYERS[part]!)
          expect(order.indexOf(dep), `src/${part} imports ${dep}`).toBeLessThan(
            order.indexOf(part),
          );
      }
    }
  });
});
