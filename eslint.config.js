// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Layering (DEVELOPERS.md, design.md C1): pure `ip`/`lease` at the bottom, then `subnet`, then the
 * backends, then the entrypoints. Each entry forbids imports from the layers above it.
 */
const layers = [
  {
    dir: 'src/ip',
    forbid: [
      'lease',
      'subnet',
      'netlink',
      'netns',
      'backend',
      'backend-vxlan',
      'backend-hostgw',
      'backend-udp',
      'dataplane',
      'daemon',
      'cni',
      'cli',
    ],
  },
  {
    dir: 'src/lease',
    forbid: [
      'subnet',
      'netlink',
      'netns',
      'backend',
      'backend-vxlan',
      'backend-hostgw',
      'backend-udp',
      'dataplane',
      'daemon',
      'cni',
      'cli',
    ],
  },
  {
    dir: 'src/subnet',
    forbid: [
      'netlink',
      'netns',
      'backend',
      'backend-vxlan',
      'backend-hostgw',
      'backend-udp',
      'dataplane',
      'daemon',
      'cni',
      'cli',
    ],
  },
  {
    dir: 'src/netlink',
    forbid: [
      'subnet',
      'backend',
      'backend-vxlan',
      'backend-hostgw',
      'backend-udp',
      'daemon',
      'cni',
      'cli',
    ],
  },
  {
    dir: 'src/flags',
    forbid: [
      'ip',
      'lease',
      'subnet',
      'netlink',
      'netns',
      'backend',
      'backend-vxlan',
      'backend-hostgw',
      'backend-udp',
      'dataplane',
      'daemon',
      'cni',
      'cli',
    ],
  },
  { dir: 'src/backend', forbid: ['daemon', 'cni', 'cli'] },
  { dir: 'src/backend-vxlan', forbid: ['daemon', 'cni', 'cli', 'subnet/etcd'] },
  { dir: 'src/backend-hostgw', forbid: ['daemon', 'cni', 'cli', 'subnet/etcd'] },
  { dir: 'src/backend-udp', forbid: ['daemon', 'cni', 'cli', 'subnet/etcd'] },
  {
    dir: 'src/cni',
    forbid: [
      'daemon',
      'cli',
      'subnet',
      'backend',
      'backend-vxlan',
      'backend-hostgw',
      'backend-udp',
      'dataplane',
    ],
  },
];

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
  ...layers.map(({ dir, forbid }) => ({
    files: [`${dir}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: forbid.map((f) => ({
            group: [`**/${f}/*`, `../${f}`, `../../${f}`],
            message: `${dir} must not depend on src/${f} (one-way layering, design.md C1)`,
          })),
        },
      ],
    },
  })),
);
