import t from 'tap'
import { parseConfig } from '../../src/config/index.ts'
import { diffConfigs } from '../../src/config/diff.ts'
import type { Config } from '../../src/types.ts'

const BASE = 'upstreams:\n  l: {url: "http://l"}\n  n: {url: "http://n"}\ndefault: l\ncontexts:\n'

function config (contexts: string): Config {
  const { config, errors } = parseConfig(BASE + contexts, 'routes.yaml', { env: {}, unsetVars: 'error' })
  if (config === null) throw new Error(errors.map(e => e.message).join('; '))
  return config
}

const a = config('  a: {match: {paths: [/a]}, legacy: l, new: n, weight: 10, sticky: {header: x-id}}\n  b: {match: {paths: [/b]}, legacy: l, new: n, weight: 0}\n')

t.test('an unchanged context is left out', async t => {
  t.strictSame(diffConfigs(a, config('  a: {match: {paths: [/a]}, legacy: l, new: n, weight: 10, sticky: {header: x-id}}\n  b: {match: {paths: [/b]}, legacy: l, new: n, weight: 0}\n')).contexts, [])
})

t.test('a new weight alone: no fields, and the share of sticky users that move', async t => {
  t.strictSame(diffConfigs(a, config('  a: {match: {paths: [/a]}, legacy: l, new: n, weight: 35, sticky: {header: x-id}}\n  b: {match: {paths: [/b]}, legacy: l, new: n, weight: 0}\n')).contexts, [
    { context: 'a', kind: 'changed', fields: [], weight: { from: 10, to: 35 }, stickyMoved: 25 }
  ])
})

t.test('a new sticky key re-draws every user; other fields are named', async t => {
  t.strictSame(diffConfigs(a, config('  a: {match: {paths: [/a, /a2]}, legacy: l, new: n, weight: 10, sticky: {cookie: sid}}\n  b: {match: {paths: [/b]}, legacy: n, new: l, weight: 0}\n')).contexts, [
    { context: 'a', kind: 'changed', fields: ['match', 'sticky'], stickyMoved: 18 },
    { context: 'b', kind: 'changed', fields: ['legacy', 'new'] }
  ])
})

t.test('added and removed contexts, changed upstreams', async t => {
  const b = parseConfig('upstreams:\n  l: {url: "http://l2"}\n  m: {url: "http://m"}\ndefault: m\ncontexts:\n  c: {match: {paths: [/c]}, legacy: l, new: m, weight: 5}\n', 'routes.yaml', { env: {}, unsetVars: 'error' }).config as Config
  t.strictSame(diffConfigs(a, b), {
    contexts: [
      { context: 'c', kind: 'added', weight: { from: 0, to: 5 }, fields: [] },
      { context: 'a', kind: 'removed', weight: { from: 10, to: 0 }, fields: [] },
      { context: 'b', kind: 'removed', weight: { from: 0, to: 0 }, fields: [] }
    ],
    upstreams: { added: ['m'], removed: ['n'], changed: ['l'] },
    default: { from: 'l', to: 'm' }
  })
})
