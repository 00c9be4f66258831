import t from 'tap'
import { contextFingerprint } from '../../src/state/override-rules.ts'
import { formatIssue, parseConfig } from '../../src/config/index.ts'

function parse (yaml: string): ReturnType<typeof parseConfig> {
  return parseConfig(yaml, 'routes.yaml', { env: {}, unsetVars: 'error' })
}

function errors (yaml: string): string[] {
  return parse(yaml).errors.map(formatIssue)
}

/** Upstreams and one context `orders`; `segments:` is line 14, its first entry line 15. */
function withSegments (lines: string): string {
  return `upstreams:
  monolith:
    url: http://monolith.internal:8080
  orders-svc:
    url: http://orders.internal:3000
default: monolith
contexts:
  orders:
    match:
      paths: [/api/orders]
    legacy: monolith
    new: orders-svc
    weight: 10
    segments:
${lines}`
}

t.test('segments from the issue are read in order, header names lower-cased, values as written', async t => {
  const { config, errors } = parse(withSegments(`      - { header: X-Tenant, values: [acme, globex], side: new }
      - { cookie: beta, values: ["1"], side: new, name: beta-testers }
      - { query: region, values: [eu], side: legacy }
`))
  t.strictSame(errors, [])
  t.strictSame(config?.contexts[0].segments, [
    { header: 'x-tenant', values: ['acme', 'globex'], side: 'new' },
    { cookie: 'beta', values: ['1'], side: 'new', name: 'beta-testers' },
    { query: 'region', values: ['eu'], side: 'legacy' }
  ])
})

t.test('a context without segments has none, and keeps the fingerprint its overrides were saved under', async t => {
  const yaml = withSegments('').replace('    segments:\n', '')
  const { config } = parse(yaml)
  t.equal(config?.contexts[0].segments, undefined)
  t.equal(JSON.stringify(config?.contexts[0]).includes('segments'), false)
  // The fingerprint of this context as every release before segments computed it.
  t.equal(contextFingerprint(config!.contexts[0]), '2b9b5a208a44')
})

t.test('a segment sets exactly one of header, cookie or query', async t => {
  t.strictSame(errors(withSegments('      - { header: x-tenant, cookie: beta, values: [a], side: new }\n')), [
    'routes.yaml:15:9 a segment must set exactly one of header, cookie or query'
  ])
  t.strictSame(errors(withSegments('      - { values: [a], side: new }\n')), [
    'routes.yaml:15:9 a segment must set exactly one of header, cookie or query'
  ])
})

t.test('values: at least one, each a non-empty string, none twice', async t => {
  t.strictSame(errors(withSegments('      - { header: x-tenant, values: [], side: new }\n')), [
    'routes.yaml:15:29 values must list at least one entry'
  ])
  t.strictSame(errors(withSegments('      - { cookie: beta, values: [1], side: new }\n')), [
    'routes.yaml:15:34 values[0] must be a string: quote numbers and booleans ("1", "true")'
  ])
  t.strictSame(errors(withSegments('      - { query: region, values: [eu, ""], side: legacy }\n')), [
    'routes.yaml:15:39 values[1] must not be empty'
  ])
  t.strictSame(errors(withSegments('      - { header: x-tenant, values: [acme, acme], side: new }\n')), [
    'routes.yaml:15:44 value "acme" is listed twice'
  ])
  t.strictSame(errors(withSegments('      - { header: x-tenant, values: [acme], side: new }\n      - { header: X-Tenant, values: [globex, acme], side: legacy }\n')), [
    'routes.yaml:16:46 header x-tenant = "acme" is already pinned by segments[0]: only the first segment that matches decides, so this one never would'
  ])
  // The same value of another header, cookie or query parameter is another segment.
  t.strictSame(errors(withSegments('      - { header: x-tenant, values: [acme], side: new }\n      - { cookie: x-tenant, values: [acme], side: legacy }\n      - { query: x-tenant, values: [acme], side: legacy }\n')), [])
})

t.test('side is legacy or new; names are header and cookie names; keys are known', async t => {
  t.strictSame(errors(withSegments('      - { header: x-tenant, values: [acme], side: both }\n')), [
    'routes.yaml:15:51 side must be legacy or new'
  ])
  t.strictSame(errors(withSegments('      - { header: x-tenant, values: [acme] }\n')), [
    'routes.yaml:15:9 segments[0] is missing required key "side"'
  ])
  t.strictSame(errors(withSegments('      - { header: "x tenant", values: [acme], side: new }\n')), [
    'routes.yaml:15:19 segment header "x tenant" is not a valid header name'
  ])
  t.strictSame(errors(withSegments('      - { cookie: "a;b", values: ["1"], side: new }\n')), [
    'routes.yaml:15:19 segment cookie "a;b" is not a valid cookie name'
  ])
  t.strictSame(errors(withSegments('      - { header: x-tenant, vaules: [acme], values: [acme], side: new }\n')), [
    'routes.yaml:15:29 unknown key "vaules" (did you mean "values"?)'
  ])
  t.strictSame(errors(withSegments('      { header: x-tenant, values: [acme], side: new }\n')), [
    'routes.yaml:14:5 segments must be a list'
  ])
})

t.test('names: a letter first, never two alike', async t => {
  t.strictSame(errors(withSegments('      - { header: x-tenant, values: [acme], side: new, name: "0" }\n')), [
    'routes.yaml:15:62 segment name "0" is not allowed: use up to 63 letters, digits, ".", "_" or "-", starting with a letter'
  ])
  t.strictSame(errors(withSegments('      - { header: x-tenant, values: [acme], side: new, name: tenants }\n      - { cookie: beta, values: ["1"], side: new, name: tenants }\n')), [
    'routes.yaml:16:57 segment name "tenants" is already used by segments[0]'
  ])
})
