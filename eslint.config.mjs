// Lint rules for the whole tree (`npm run lint`, run by `npm test`). Type-aware rules need the TypeScript program,
// so they read tsconfig.json.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      'no-restricted-syntax': ['error', { selector: 'ExportAllDeclaration', message: 'Name the exports (no export *)' }],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    // The page's browser scripts share one global scope (classic scripts, see page/tsconfig.json): a function
    // one script defines is used by another, which a per-file rule cannot see.
    files: ['src/extensions/routequery/page/**/*.ts'],
    rules: { '@typescript-eslint/no-unused-vars': 'off' },
  },
);
