// Lint rules, including the import boundaries of STYLE.md: each folder of
// provider/ may import only the folders listed below it, never above.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Top to bottom. A layer imports only layers after it (and the root files
// errors.ts, states.ts, clock.ts, units.ts, atomic-file.ts, which import nothing above them).
const layers = ['cli', 'pulumi', 'yaml', 'client', 'vault', 'agent', 'hypervisor', 'targets', 'replication', 'format', 'validation'];

// Processes that must not share code paths even though the list allows it.
const extraForbidden = {
  pulumi: ['vault', 'agent', 'hypervisor', 'targets', 'replication', 'format'],
  // The schemas of schemas/ and their error formatting: shared by the vault, the client, Pulumi and YAML.
  validation: [],
  client: ['vault', 'agent', 'hypervisor', 'targets', 'replication', 'format'],
  vault: ['agent', 'hypervisor', 'targets'],
};

const patternsFor = (layer) => {
  const above = layers.slice(0, layers.indexOf(layer));
  const forbidden = [...new Set([...above, ...(extraForbidden[layer] ?? [])])];
  return forbidden.map((name) => ({
    // Relative imports only, so npm packages named like a layer (yaml, @pulumi/pulumi) stay allowed.
    regex: `^\\.{1,2}/(?:.*/)?${name}(?:/|$)`,
    message: `provider/${layer} must not import provider/${name} (STYLE.md: imports point down the layer list).`,
  }));
};

const rootFiles = ['provider/errors.ts', 'provider/states.ts', 'provider/clock.ts', 'provider/units.ts', 'provider/atomic-file.ts'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.tools/**', '.lab/**', 'examples/**/node_modules/**', 'eslint.config.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly', console: 'readonly', Buffer: 'readonly', require: 'readonly', module: 'writable',
        __dirname: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly',
        clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', AbortController: 'readonly',
        AbortSignal: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', fetch: 'readonly',
        queueMicrotask: 'readonly', structuredClone: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'eqeqeq': ['error', 'always'],
      'no-console': 'off',
    },
  },
  {
    files: ['scripts/**/*.js'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Dynamic providers are serialised as closures: they require() what they
    // need inside each method instead of capturing imported modules.
    files: ['provider/pulumi/**/*.ts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  {
    files: rootFiles,
    rules: {
      'no-restricted-imports': ['error', {
        patterns: layers.map((name) => ({ regex: `^\\./${name}(?:/|$)`, message: 'root files import no layer.' })),
      }],
    },
  },
  ...layers.map((layer) => ({
    files: [`provider/${layer}/**/*.ts`],
    rules: { 'no-restricted-imports': ['error', { patterns: patternsFor(layer) }] },
  })),
);
