import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import vitest from '@vitest/eslint-plugin';

export default tseslint.config(
  { ignores: ['node_modules', '.serverless', '.esbuild', '.keyplan', 'coverage'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/ban-ts-comment': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    // What a Lambda bundles validates with zod/mini, through shared/schema.ts (which loads its English
    // messages). The classic API (about 98 KB) or the `z` namespace as a named import (all of zod,
    // about 430 KB) would come back into every bundle instead of zod/mini's 31 KB (bench figure 3).
    files: ['shared/**/*.ts', 'functions/**/*.ts'],
    ignores: ['shared/schema.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'zod', message: "Use zod/mini through shared/schema.ts: import * as z from '../schema'." },
            { name: 'zod/mini', message: "Import it through shared/schema.ts, which loads zod's English messages." },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "ImportDeclaration[source.value=/(^|\\/)schema$/] > ImportSpecifier[imported.name='z']",
          message: "import * as z from '.../schema': the named `z` is all of zod, which esbuild cannot tree-shake.",
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    plugins: { vitest },
    rules: {
      ...vitest.configs.recommended.rules,
      'vitest/no-focused-tests': 'error',
      'vitest/no-disabled-tests': 'error',
      // Helpers whose name starts with expect assert too.
      'vitest/expect-expect': ['error', { assertFunctionNames: ['expect', 'expect*'] }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
  },
);
