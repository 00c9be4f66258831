import { readFileSync } from 'node:fs'
import { Ajv } from 'ajv'
import t from 'tap'
import { parse } from 'yaml'
import { configSchema, formatIssue, parseConfig } from '../../src/config/index.ts'

const SHIPPED = new URL('../../config/routes.schema.json', import.meta.url)
const shipped = JSON.parse(readFileSync(SHIPPED, 'utf8')) as object
/** What an editor does with the shipped file: plain draft-07, no hand checks, no ${VAR} substitution. */
const editor = new Ajv({ allErrors: true, strict: false }).compile(shipped)

function validator (yaml: string): string[] {
  return parseConfig(yaml, 'routes.yaml', { env: { STRANGLER_ADMIN_TOKEN: 't' }, unsetVars: 'error' }).errors.map(formatIssue)
}

t.test('the shipped JSON Schema is the validator\'s own description (npm run schema rewrites it)', async t => {
  t.strictSame(shipped, JSON.parse(JSON.stringify(configSchema)))
})

t.test('config/routes.yaml names the shipped schema for editors on its first line', async t => {
  const first = readFileSync(new URL('../../config/routes.yaml', import.meta.url), 'utf8').split('\n', 1)[0]
  t.equal(first, '# yaml-language-server: $schema=./routes.schema.json')
})

const VALID = ['../../config/routes.yaml', '../fixtures/config/design-example.yaml', '../fixtures/cli/old.yaml', '../fixtures/cli/new.yaml', '../fixtures/cli/segments-new.yaml']

t.test('editor and validator both accept the shipped and documented examples', async t => {
  for (const file of VALID) {
    const yaml = readFileSync(new URL(file, import.meta.url), 'utf8')
    t.strictSame(validator(yaml), [], `${file}: validator`)
    t.equal(editor(parse(yaml)), true, `${file}: editor`, { errors: editor.errors })
  }
})

const BASE = `upstreams:
  monolith: { url: "http://monolith:8080" }
  orders-svc: { url: "http://orders:3000" }
default: monolith
`
const context = (extra: string, weight = '25'): string => `${BASE}contexts:
  orders:
    match: { paths: [/api/orders] }
    legacy: monolith
    new: orders-svc
    weight: ${weight}
${extra}`

/** Mistakes JSON Schema can describe: an editor must flag each, and the validator must refuse it. */
const MISTAKES: Record<string, string> = {
  'misspelt top-level key': `${BASE}contxts: {}\n`,
  'misspelt server key': `server: { listn: "0.0.0.0:8080" }\n${BASE}`,
  'misspelt upstream key': 'upstreams:\n  monolith: { url: "http://m", timout: 5s }\ndefault: monolith\n',
  'misspelt context key': context('    wieght: 10\n'),
  'misspelt match key': `${BASE}contexts:\n  orders:\n    match: { path: [/a] }\n    legacy: monolith\n    new: orders-svc\n    weight: 1\n`,
  'missing upstreams': 'default: monolith\n',
  'missing default': 'upstreams:\n  monolith: { url: "http://m" }\n',
  'upstream without url': 'upstreams:\n  monolith: { timeout: 5s }\ndefault: monolith\n',
  'context without weight': `${BASE}contexts:\n  orders:\n    match: { paths: [/a] }\n    legacy: monolith\n    new: orders-svc\n`,
  'weight above 100': context('', '101'),
  'weight as a string': context('', '"ten"'),
  'duration without a unit': 'upstreams:\n  monolith: { url: "http://m", timeout: 30 }\ndefault: monolith\n',
  'duration with units out of order': 'upstreams:\n  monolith: { url: "http://m", timeout: 30m1h }\ndefault: monolith\n',
  'zero duration': 'server: { drainTimeout: 0s }\nupstreams:\n  monolith: { url: "http://m" }\ndefault: monolith\n',
  'sticky with both header and cookie': context('    sticky: { header: x-user, cookie: sid }\n'),
  'empty sticky': context('    sticky: {}\n'),
  'empty paths': `${BASE}contexts:\n  orders:\n    match: { paths: [] }\n    legacy: monolith\n    new: orders-svc\n    weight: 1\n`,
  'context named default': `${BASE}contexts:\n  default:\n    match: { paths: [/a] }\n    legacy: monolith\n    new: orders-svc\n    weight: 1\n`,
  'upstream name with a space': 'upstreams:\n  "mono lith": { url: "http://m" }\ndefault: mono lith\n',
  'shadow without percent': context('    shadow: { methods: [GET] }\n'),
  'shadow body limit above 1 MiB': context('    shadow: { percent: 5, maxBodyBytes: 2000000 }\n'),
  'ramp without every': context('    ramp: { steps: [1, 5] }\n'),
  'guard latency ratio below 1': context('    guard: { maxLatencyRatio: 0.5 }\n'),
  'rewrite key misspelt': context('    rewrite: { new: { stripPrefx: /api } }\n'),
  'maxHeaderBytes below 1024': `server: { maxHeaderBytes: 10 }\n${BASE}`,
  'boardAuth as a string': `server: { boardAuth: "yes" }\n${BASE}`,
  'segment with header and cookie': context('    segments: [{ header: x-tenant, cookie: beta, values: [acme], side: new }]\n'),
  'segment with none of header, cookie, query': context('    segments: [{ values: [acme], side: new }]\n'),
  'segment without values': context('    segments: [{ header: x-tenant, values: [], side: new }]\n'),
  'segment with an empty value': context('    segments: [{ query: region, values: [""], side: legacy }]\n'),
  'segment value as a number': context('    segments: [{ cookie: beta, values: [1], side: new }]\n'),
  'segment side misspelt': context('    segments: [{ header: x-tenant, values: [acme], side: nwe }]\n'),
  'segment without side': context('    segments: [{ header: x-tenant, values: [acme] }]\n'),
  'segment key misspelt': context('    segments: [{ header: x-tenant, value: [acme], side: new }]\n'),
  'segment name starting with a digit': context('    segments: [{ header: x-tenant, values: [acme], side: new, name: 1st }]\n'),
  'segments as a mapping': context('    segments: { header: x-tenant, values: [acme], side: new }\n')
}

t.test('every structural mistake is flagged by the editor and refused by the validator', async t => {
  for (const [name, yaml] of Object.entries(MISTAKES)) {
    t.equal(editor(parse(yaml)), false, `${name}: editor flags it`)
    t.not(validator(yaml).length, 0, `${name}: validator refuses it`)
  }
})
