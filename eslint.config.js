// @ts-check
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/**
 * Type-aware rules (typescript-eslint's recommended set with type information), no import cycles, no
 * promise left floating. `npm run lint` runs it with --max-warnings 0, and so does CI (.ci/run).
 */
export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'bench-results/', 'node_modules/', 'scripts/copy-migrations.mjs'] },
  ...tseslint.configs.recommendedTypeChecked,
  // The import plugin's settings for TypeScript files (their extensions and parser).
  importX.flatConfigs.typescript,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['eslint.config.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    // Our imports name the compiled .js of a .ts file: resolved the way TypeScript resolves them.
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver()] },
    rules: {
      // Cycles among our own modules; dependencies are not read (ignoreExternal).
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Fastify's plugins and hooks are async by contract (FastifyPluginAsync; an async hook that
      // returns nothing): an async function without an await is how Fastify code is written.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // A test (and a benchmark) reads the JSON answers it asserts on or counts (`response.data`, typed
    // `any` by test/helpers/app.ts): typing every answer would restate the OpenAPI document that
    // test/openapi*.test.ts already checks.
    files: ['test/**/*.ts', 'scripts/bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
