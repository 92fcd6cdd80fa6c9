/**
 * weftd and weftctl in one CommonJS bundle (docs/design.md C18), the SEA asset src/sea/main.ts runs when
 * the packaged executable is started as weftd or weftctl. Each entrypoint is imported lazily so only the
 * program asked for is evaluated.
 */
import { basename } from 'node:path';

if (basename(process.argv0) === 'weftd') void import('../daemon/main.js');
else void import('../cli/main.js');
