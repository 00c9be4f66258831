import stylistic from '@stylistic/eslint-plugin'
import tseslint from 'typescript-eslint'

// One style, standard's (what neostandard enforces), from @stylistic's preset;
// typescript-eslint's recommended rules without type information, so that linting stays fast.
export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'helm/', 'coverage/', '.tap/'] },
  ...tseslint.configs.recommended,
  stylistic.configs.customize({ indent: 2, quotes: 'single', semi: false, commaDangle: 'never', braceStyle: '1tbs' }),
  {
    rules: {
      '@stylistic/space-before-function-paren': ['error', 'always'],
      '@stylistic/member-delimiter-style': ['error', { multiline: { delimiter: 'none' }, singleline: { delimiter: 'semi', requireLast: false } }],
      '@stylistic/operator-linebreak': ['error', 'after', { overrides: { '?': 'before', ':': 'before', '|>': 'before' } }],
      '@stylistic/arrow-parens': 'off',
      '@stylistic/list-style': 'off',
      '@stylistic/max-statements-per-line': 'off',
      '@stylistic/quote-props': 'off'
    }
  }
)
