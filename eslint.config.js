// ESLint (flat config): the rules that keep the process boundaries and the async code honest.
// `npm run lint` runs it; `npm test` runs it before the tests. TypeScript files only; the
// typecheck (tsc) covers everything else about types.
import { readdirSync } from 'node:fs';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

const root = import.meta.dirname;
const services = readdirSync(`${root}/services`, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name);

/** Runtime code: what `npm start` and the images run. */
const runtime = ['gateway/**/*.ts', 'services/**/*.ts', 'lib/**/*.ts', 'bin/**/*.ts'];

export default tseslint.config(
  { ignores: ['gen/**', 'dist/**', 'node_modules/**', '.data/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: root },
    },
    plugins: { '@typescript-eslint': tseslint.plugin, 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/external-module-folders': ['node_modules', 'node_modules/@types'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      // Sources import `./x.js` and the file on disk is `./x.ts` (NodeNext resolution).
      'import-x/resolver-next': [
        createNodeResolver({ extensions: ['.ts', '.js', '.json'], extensionAlias: { '.js': ['.ts', '.js'] } }),
      ],
    },
    rules: {
      // node:test's describe/it return promises that the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after'] },
          ],
        },
      ],
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
      ],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  {
    // Process boundaries. Tests (anywhere) may import anything.
    files: runtime,
    ignores: ['**/*.test.ts'],
    rules: {
      'import-x/no-restricted-paths': [
        'error',
        {
          basePath: root,
          zones: [
            ...services.map((name) => ({
              target: `./services/${name}`,
              from: './services',
              except: [`./${name}`],
              message: 'a service imports no other service (share code through lib/ or gen/)',
            })),
            {
              target: './services',
              from: './gateway',
              message: 'a service imports nothing from the gateway',
            },
            {
              target: './gateway',
              from: './services',
              message: 'the gateway imports no service: it talks to them over gRPC (gen/ and lib/ only)',
            },
            {
              target: './lib',
              from: ['./gateway', './services', './scripts', './bin'],
              message: 'lib/ is shared by every process and imports no process code',
            },
            {
              target: ['./gateway', './services', './lib', './bin'],
              from: ['./scripts', './bench', './test'],
              message: 'runtime code imports no scripts/, bench/ or test/ code',
            },
          ],
        },
      ],
    },
  },
);
