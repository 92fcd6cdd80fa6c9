// @ts-check
import { readdirSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Layering (README.md "Architecture", docs/architecture.md): every directory of src/ (and the top-level
 * errors.ts) names the parts of src/ it may import; everything else is forbidden. Bottom to top.
 */
export const backendDeps = [
  'errors',
  'exec',
  'files',
  'log',
  'ip',
  'lease',
  'native',
  'netns',
  'subnet',
  'netlink',
  'dataplane',
  'backend',
];
const entrypointDeps = [
  ...backendDeps,
  'firewall',
  'flags',
  'migration',
  'backend-vxlan',
  'backend-hostgw',
  'backend-udp',
  'backend-wireguard',
];
/** @type {Record<string, string[]>} */
export const layers = {
  errors: [],
  log: [],
  exec: [],
  ip: ['errors'],
  lease: ['errors', 'ip'],
  native: ['errors'],
  flags: ['errors', 'lease'],
  files: ['errors'],
  migration: ['errors', 'exec'],
  netns: ['errors', 'native'],
  subnet: ['errors', 'files', 'log', 'ip', 'lease'],
  netlink: ['errors', 'log', 'ip', 'netns', 'native'],
  dataplane: ['errors', 'log', 'ip', 'native'],
  firewall: ['errors', 'exec', 'log', 'subnet'],
  backend: ['errors', 'log', 'ip', 'lease', 'subnet', 'netlink', 'dataplane'],
  'backend-vxlan': backendDeps,
  'backend-hostgw': backendDeps,
  'backend-udp': backendDeps,
  'backend-wireguard': backendDeps,
  // The CNI plugin is bundled into one small file (scripts/build-cni.mjs): pure values only.
  cni: ['errors', 'files', 'ip', 'lease'],
  // weftd runs the CNI plugin in-process; no other entrypoint imports another.
  daemon: [...entrypointDeps, 'cni'],
  cli: entrypointDeps,
  // The packaged multi-call executable: starts one of the entrypoints by argv[0].
  sea: ['daemon', 'cli', 'cni'],
};
/** Only these parts may import the etcd client (subnet/etcd/, subnet/etcd-manager.ts). */
const etcdImporters = ['subnet', 'daemon', 'cli'];
/** npm packages that only one directory may import (path under src/). */
const packageOwners = { netlink: 'netlink' };

const src = resolve(dirname(fileURLToPath(import.meta.url)), 'src');
for (const entry of readdirSync(src, { withFileTypes: true })) {
  const name = entry.isDirectory() ? entry.name : entry.name.replace(/\.ts$/, '');
  if ((entry.isDirectory() || entry.name.endsWith('.ts')) && !(name in layers)) {
    throw new Error(
      `eslint.config.js: src/${entry.name} has no entry in \`layers\`; name what it may import`,
    );
  }
}
for (const [part, deps] of Object.entries(layers)) {
  for (const dep of deps) {
    if (!(dep in layers))
      throw new Error(`eslint.config.js: layers.${part} names unknown part ${dep}`);
  }
}

/** The top-level part of src/ a path (relative to src/) belongs to: `subnet/etcd/x.js` → `subnet`. */
const partOf = (/** @type {string} */ rel) => rel.split('/')[0].replace(/\.[jt]s$/, '');

/** @type {import('eslint').Rule.RuleModule} */
const layering = {
  meta: { type: 'problem', schema: [] },
  create(context) {
    const from = relative(src, context.filename);
    if (from.startsWith('..')) return {};
    const part = partOf(from);
    /** @param {any} node */
    const check = (node) => {
      const spec = node.source?.value;
      if (typeof spec !== 'string') return;
      const report = (/** @type {string} */ message) =>
        context.report({ node: node.source, message });
      if (!spec.startsWith('.')) {
        // a package's own files (`netlink/dist/rt/rt.js`) belong to its owner too
        const pkg = spec.split('/')[0];
        const owner = packageOwners[/** @type {keyof typeof packageOwners} */ (pkg)];
        if (owner !== undefined && !from.startsWith(`${owner}/`))
          report(`only src/${owner} imports '${spec}'`);
        return;
      }
      const target = relative(src, resolve(dirname(context.filename), spec));
      if (target.startsWith('..'))
        return report(`src/${part} must not import outside src/ (${spec})`);
      const to = partOf(target);
      if (to !== part && !layers[part].includes(to)) {
        report(
          `src/${part} must not import src/${to} (layers in eslint.config.js, README "Architecture")`,
        );
      } else if (/^subnet\/etcd/.test(target) && !etcdImporters.includes(part)) {
        report(
          `src/${part} must not import the etcd client (${target}); take a LeaseManager instead`,
        );
      }
    };
    return {
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression: check,
    };
  },
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native/build/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[object.name='process'][property.name='exit']",
          message: 'process.exit only in entrypoint main files',
        },
      ],
    },
  },
  {
    files: ['src/*/main.ts', 'bin/**', 'scripts/**', 'bench/**', 'test/**'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { weft: { rules: { layering } } },
    rules: { 'weft/layering': 'error' },
  },
);
