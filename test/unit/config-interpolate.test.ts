import t from 'tap'
import { expand, formatIssue, parseConfig } from '../../src/config/index.ts'

const BASE = `upstreams:
  monolith:
    url: \${MONOLITH_URL:-http://monolith.internal:8080}
default: monolith
`

function parse (yaml: string, env: Record<string, string | undefined>, unsetVars: 'error' | 'warn' = 'error') {
  const result = parseConfig(yaml, 'routes.yaml', { env, unsetVars })
  return { config: result.config, errors: result.errors.map(formatIssue), warnings: result.warnings.map(formatIssue) }
}

t.test('expand', async t => {
  const env = { HOST: 'orders.internal', EMPTY: '', WEIRD: '${HOST} [1, 2] #x' }
  const cases: Array<[string, string, string[], string | null]> = [
    ['http://${HOST}:3000', 'http://orders.internal:3000', [], null],
    ['${MISSING:-fallback}', 'fallback', [], null],
    ['${EMPTY:-fallback}', 'fallback', [], null],
    ['${HOST:-fallback}', 'orders.internal', [], null],
    ['${MISSING:-}', '', [], null],
    ['${MISSING}', '', ['MISSING'], null],
    ['a${MISSING}b${OTHER}c', 'abc', ['MISSING', 'OTHER'], null],
    ['${WEIRD}', '${HOST} [1, 2] #x', [], null],
    ['$${HOST}', '${HOST}', [], null],
    ['$$${HOST}', '$${HOST}', [], null],
    ['cost: $5 and $$', 'cost: $5 and $$', [], null],
    ['$HOST', '$HOST', [], null],
    ['${HOST', '${HOST', [], '${HOST'],
    ['${1X}', '${1X}', [], '${1X}'],
    ['${HOST-x}', '${HOST-x}', [], '${HOST-x}'],
    ['${}', '${}', [], '${}']
  ]
  for (const [text, value, unset, invalid] of cases) t.strictSame(expand(text, env), { value, unset, invalid }, text)
})

t.test('a set variable is substituted into the string value', async t => {
  const { config, errors } = parse(`server:\n  adminToken: \${TOKEN}\n${BASE}`, { TOKEN: 's3cret', MONOLITH_URL: 'http://10.0.0.5:8080/app' })
  t.strictSame(errors, [])
  t.equal(config?.server.adminToken, 's3cret')
  t.equal(config?.upstreams.monolith.origin, 'http://10.0.0.5:8080')
  t.equal(config?.upstreams.monolith.basePath, '/app')
})

t.test('a default applies when the variable is unset', async t => {
  t.equal(parse(BASE, {}).config?.upstreams.monolith.origin, 'http://monolith.internal:8080')
})

t.test('values are data, never YAML: no injection through the environment', async t => {
  const { config, errors } = parse(`server:\n  adminToken: \${TOKEN}\n${BASE}`, { TOKEN: 'x\ncontexts: {evil: 1}\n# ${TOKEN}' })
  t.strictSame(errors, [])
  t.equal(config?.server.adminToken, 'x\ncontexts: {evil: 1}\n# ${TOKEN}')
  t.strictSame(config?.contexts, [])
})

t.test('only string scalars are interpolated; keys never are', async t => {
  const { errors } = parse(`${BASE}contexts:\n  \${NAME}:\n    match: { paths: [/a] }\n    legacy: monolith\n    new: monolith\n    weight: \${WEIGHT}\n`, { NAME: 'orders', WEIGHT: '25' })
  t.strictSame(errors, [
    'routes.yaml:6:3 context name "${NAME}" is not allowed: use up to 63 letters, digits, ".", "_" or "-", starting with a letter or digit',
    'routes.yaml:10:13 weight must be a number'
  ])
})

t.test('an unset variable is an error at the scalar for serve', async t => {
  const { config, errors, warnings } = parse(`server:\n  adminToken: \${STRANGLER_ADMIN_TOKEN}\n${BASE}`, {})
  t.equal(config, null)
  t.strictSame(errors, ['routes.yaml:2:15 environment variable STRANGLER_ADMIN_TOKEN is not set'])
  t.strictSame(warnings, [])
})

t.test('an unset variable is a warning for check, and the value becomes empty', async t => {
  const { config, errors, warnings } = parse(`server:\n  adminToken: \${STRANGLER_ADMIN_TOKEN}\n${BASE}`, {}, 'warn')
  t.strictSame(errors, [])
  t.strictSame(warnings, ['routes.yaml:2:15 environment variable STRANGLER_ADMIN_TOKEN is not set'])
  t.equal(config?.server.adminToken, null)
})

t.test('errors on a value with an unset variable are not reported as well', async t => {
  const yaml = `server:
  listen: \${LISTEN}
  drainTimeout: "\${DRAIN}"
upstreams:
  monolith:
    url: \${MONOLITH_URL}
default: \${DEFAULT_UPSTREAM}
contexts:
  orders:
    match: { paths: ["\${PREFIX}"] }
    legacy: monolith
    new: monolith
    weight: \${WEIGHT}
`
  const expected = [
    'routes.yaml:2:11 environment variable LISTEN is not set',
    'routes.yaml:3:17 environment variable DRAIN is not set',
    'routes.yaml:6:10 environment variable MONOLITH_URL is not set',
    'routes.yaml:7:10 environment variable DEFAULT_UPSTREAM is not set',
    'routes.yaml:10:22 environment variable PREFIX is not set',
    'routes.yaml:13:13 environment variable WEIGHT is not set'
  ]
  const warned = parse(yaml, {}, 'warn')
  t.strictSame(warned.errors, [])
  t.strictSame(warned.warnings, expected)
  t.equal(warned.config?.server.listen.port, 8080, 'an unusable value falls back to the default')
  t.equal(warned.config?.server.drainTimeoutMs, 30_000)
  const failed = parse(yaml, {})
  t.strictSame(failed.errors, expected)
  t.equal(failed.config, null)
})

t.test('a value only partly made of an unset variable is not judged either', async t => {
  const { errors, warnings } = parse(`${BASE}contexts:\n  orders:\n    match: { paths: ["/api/\${MISSING}", "api\${ALSO_MISSING}"] }\n    legacy: monolith\n    new: monolith\n    weight: 1\n`, {}, 'warn')
  t.strictSame(warnings, [
    'routes.yaml:7:22 environment variable MISSING is not set',
    'routes.yaml:7:41 environment variable ALSO_MISSING is not set'
  ])
  t.strictSame(errors, [], 'the errors on those values are left unsaid')
})

t.test('a malformed reference is an error even for check', async t => {
  const { errors } = parse(`server:\n  adminToken: "\${TOKEN"\n${BASE}`, {}, 'warn')
  t.strictSame(errors, ['routes.yaml:2:15 "${TOKEN" is not a valid variable reference; write ${NAME}, ${NAME:-default}, or $${ for a literal "${"'])
})

t.test('$${ is a literal ${', async t => {
  t.equal(parse(`server:\n  adminToken: "a$\${b}"\n${BASE}`, {}).config?.server.adminToken, 'a${b}')
})
