import t from 'tap'
import { formatIssue, parseConfig } from '../../src/config/index.ts'

const opts = { env: {}, unsetVars: 'error' as const }
const parse = (text: string) => parseConfig(text, 'routes.yaml', opts)
const errors = (text: string) => parse(text).errors.map(formatIssue)

const BASE = 'upstreams:\n  a: { url: "http://a" }\n  b: { url: "http://b" }\ndefault: a\n'

t.test('an alias bomb is stopped at the first alias', async t => {
  const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
  for (let i = 1; i < 9; i++) {
    const prev = String.fromCharCode(96 + i)
    levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill('*' + prev).join(',')}]`)
  }
  t.strictSame(errors(levels.join('\n')), ['routes.yaml:2:8 aliases expand too much (more than 100 expansions); is this an alias bomb?'])
})

t.test('a few aliases are fine', async t => {
  const text = 'upstreams:\n  a: { url: "http://a", timeout: &t 5s }\n  b: { url: "http://b", timeout: *t }\ndefault: a\n'
  t.equal(parse(text).config?.upstreams.b.timeoutMs, 5000)
})

t.test('100,000 levels of nesting are refused before yaml builds them', async t => {
  t.strictSame(errors('a: ' + '['.repeat(100_000) + ']'.repeat(100_000)), ['routes.yaml:1:257 nesting is deeper than 64 levels'])
  t.strictSame(errors('- '.repeat(100_000) + 'x'), ['routes.yaml:1:509 nesting is deeper than 64 levels'])
  t.strictSame(errors('{a: '.repeat(100_000)), ['routes.yaml:1:1025 nesting is deeper than 64 levels'])
  const indented = Array.from({ length: 1000 }, (_, i) => ' '.repeat(i) + 'a:').join('\n')
  t.strictSame(errors(indented), ['routes.yaml:128:129 nesting is deeper than 64 levels'])
})

t.test('64 levels are allowed, 65 are not', async t => {
  const nested = (n: number): string => Array.from({ length: n }, (_, i) => ' '.repeat(i) + 'k:').join('\n') + ' 1\n'
  t.strictSame(errors(nested(64)).filter(e => e.includes('nesting')), [])
  t.strictSame(errors(nested(65)), ['routes.yaml:65:65 nesting is deeper than 64 levels'])
  t.strictSame(errors('k: ' + '['.repeat(63) + ']'.repeat(63)).filter(e => e.includes('nesting')), [])
  t.strictSame(errors('k: ' + '['.repeat(64) + ']'.repeat(64)), ['routes.yaml:1:67 nesting is deeper than 64 levels'])
})

t.test('1 MiB of garbage gives errors, not a hang or a throw', async t => {
  let seed = 42
  const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  const garbage = Array.from({ length: 1024 * 1024 }, () => String.fromCharCode(Math.floor(random() * 128))).join('')
  const result = parse(garbage)
  t.equal(result.config, null)
  t.ok(result.errors.length > 0)
  for (const quoted of ['"'.repeat(1024 * 1024), '? '.repeat(512 * 1024), '\0'.repeat(1024 * 1024)]) {
    t.equal(parse(quoted).config, null)
  }
})

t.test('YAML errors beyond 50 are summed up', async t => {
  const result = errors('*a '.repeat(1000))
  t.equal(result.length, 51)
  t.equal(result[50], 'routes.yaml:1:154 invalid YAML: 949 more errors not shown')
})

t.test('errors beyond 1000 are summed up', async t => {
  const text = BASE + Array.from({ length: 1500 }, (_, i) => `x${i}: 1\n`).join('')
  const result = errors(text)
  t.equal(result.length, 1001)
  t.equal(result[999], 'routes.yaml:1004:1 unknown key "x999" (allowed: server, upstreams, default, contexts)')
  t.equal(result[1000], 'routes.yaml:1005:1 500 more not shown')
})

t.test('10,000 contexts validate, and an overlap among them is found', async t => {
  const contexts = Array.from({ length: 10_000 }, (_, i) => `  c${i}: { match: { paths: [/svc/${i}] }, legacy: a, new: b, weight: ${i % 101} }\n`)
  const ok = parse(`${BASE}contexts:\n${contexts.join('')}`)
  t.strictSame(ok.errors, [])
  t.equal(ok.config?.contexts.length, 10_000)
  contexts[9_999] = '  c9999: { match: { paths: [/svc/1234] }, legacy: a, new: b, weight: 5 }\n'
  t.strictSame(errors(`${BASE}contexts:\n${contexts.join('')}`), [
    'routes.yaml:10005:3 context "c9999" overlaps context "c1234": both match any host, prefix /svc/1234, any method; give one of them other paths, hosts or methods'
  ])
})

t.test('10,000 contexts on one prefix, told apart by host', async t => {
  const contexts = Array.from({ length: 10_000 }, (_, i) => `  t${i}: { match: { paths: [/], hosts: [t${i}.example.com] }, legacy: a, new: b, weight: 0 }\n`)
  contexts.push('  again: { match: { paths: [/], hosts: [T17.example.com] }, legacy: a, new: b, weight: 0 }\n')
  t.strictSame(errors(`${BASE}contexts:\n${contexts.join('')}`), [
    'routes.yaml:10006:3 context "again" overlaps context "t17": both match host t17.example.com, prefix /, any method; give one of them other paths, hosts or methods'
  ])
})

t.test('10,000 identical contexts give one error each, fast', async t => {
  const contexts = Array.from({ length: 10_000 }, (_, i) => `  c${i}: { match: { paths: [/x] }, legacy: a, new: b, weight: 0 }\n`)
  const result = errors(`${BASE}contexts:\n${contexts.join('')}`)
  t.equal(result.length, 1001)
  t.equal(result[0], 'routes.yaml:7:3 context "c1" overlaps context "c0": both match any host, prefix /x, any method; give one of them other paths, hosts or methods')
})
