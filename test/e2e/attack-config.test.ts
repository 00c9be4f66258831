import fc from 'fast-check'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parse as parseYaml, stringify } from 'yaml'
import { loadConfigFile, parseConfig, type ParseResult } from '../../src/config/index.ts'
import { compileTable } from '../../src/routing/table.ts'
import { get, proxy, tempDir, upstream } from '../helpers.ts'

/*
 * Hostile config files: random, truncated, alias bombs, deep nesting, huge.
 * parseConfig must answer every one with a config or with errors that point
 * into the file, never throw, never hang; a config it accepts must compile.
 * A proxy asked to reload any invalid one keeps routing exactly as before.
 */

const OPTS = { env: { TOKEN: 't0k' }, unsetVars: 'error' as const }

/** A config using every section, with `slots` to put hostile values in. */
function valid (legacy = 'http://legacy.internal:8080', orders = 'http://orders.internal:3000', slot: Partial<Record<Slot, string>> = {}): string {
  const s = { ...DEFAULT_SLOTS, ...slot }
  return `server:
  listen: 127.0.0.1:0
  admin: 127.0.0.1:0
  adminToken: \${TOKEN:-fallback}
  trustProxy: ${s.trustProxy}
  accessLog: false
  drainTimeout: ${s.drainTimeout}
upstreams:
  legacy:
    url: ${legacy}
  orders-svc:
    url: ${orders}
    timeout: ${s.timeout}
    preserveHost: false
default: ${s.default}
contexts:
  orders:
    match:
      paths: ${s.paths}
      methods: ${s.methods}
    legacy: legacy
    new: orders-svc
    weight: ${s.weight}
    sticky:
      header: ${s.sticky}
    rewrite:
      new: { stripPrefix: ${s.stripPrefix}, addPrefix: /v2 }
  carts:
    match:
      paths: [/api/carts]
      hosts: ${s.hosts}
    legacy: legacy
    new: orders-svc
    weight: 0
`
}

type Slot = 'trustProxy' | 'drainTimeout' | 'timeout' | 'default' | 'paths' | 'methods' | 'weight' | 'sticky' | 'stripPrefix' | 'hosts'
const DEFAULT_SLOTS: Record<Slot, string> = {
  trustProxy: '[10.0.0.0/8]',
  drainTimeout: '5s',
  timeout: '10s',
  default: 'legacy',
  paths: '[/api/orders]',
  methods: '[GET, POST]',
  weight: '100',
  sticky: 'x-user-id',
  stripPrefix: '/api',
  hosts: "[shop.example.com, '*.shop.example.com']"
}
const SLOTS = Object.keys(DEFAULT_SLOTS) as Slot[]

const VALID = valid()

/** Throws unless `r` is a config or a list of errors that each point into `text`. */
function wellFormed (r: ParseResult, text: string, file = 'routes.yaml'): void {
  if ((r.config === null) !== (r.errors.length > 0)) throw new Error(`config ${r.config === null ? 'null' : 'set'} with ${r.errors.length} errors`)
  const lines = text.split('\n').length
  for (const e of r.errors) {
    if (e.file !== file) throw new Error(`error names file ${e.file}`)
    if (!Number.isInteger(e.line) || e.line < 1 || e.line > lines + 1 || !Number.isInteger(e.col) || e.col < 1) throw new Error(`error at ${e.line}:${e.col} outside a ${lines}-line file: ${e.message}`)
    if (typeof e.message !== 'string' || e.message.trim() === '') throw new Error('an error without a message')
  }
  if (r.config !== null) compileTable(r.config)
}

const checked = new Map<string, ParseResult>()

function check (text: string): ParseResult {
  const r = parseConfig(text, 'routes.yaml', OPTS)
  wellFormed(r, text)
  checked.set(text, r)
  return r
}

/** True when loading `text` from a file must fail: over the 1 MiB limit, or refused by parseConfig. */
function invalidAsFile (text: string): boolean {
  return Buffer.byteLength(text) > 1024 * 1024 || (checked.get(text) ?? check(text)).config === null
}

t.test('the base config is valid', async t => {
  const r = check(VALID)
  t.strictSame(r.errors, [])
  t.strictSame(r.config?.contexts.map(c => c.name), ['orders', 'carts'])
})

t.test('random text spliced into a valid config: a config or positioned errors, never a throw', async t => {
  fc.assert(fc.property(fc.nat({ max: VALID.length }), fc.string({ unit: 'binary', maxLength: 40 }), (at, junk) => {
    check(VALID.slice(0, at) + junk + VALID.slice(at))
  }), { numRuns: 300 })
  fc.assert(fc.property(fc.nat({ max: VALID.length }), fc.nat({ max: 40 }), fc.string({ unit: 'grapheme-ascii', maxLength: 20 }), (at, cut, junk) => {
    check(VALID.slice(0, at) + junk + VALID.slice(at + cut))
  }), { numRuns: 300 })
  t.pass('600 spliced configs')
})

t.test('any JSON value in any slot of a valid config: a config or positioned errors', async t => {
  fc.assert(fc.property(fc.constantFrom(...SLOTS), fc.jsonValue({ maxDepth: 4 }), (slot, value) => {
    check(valid(undefined, undefined, { [slot]: JSON.stringify(value) }))
  }), { numRuns: 300 })
  // And as block YAML, which can reshape the document around the slot.
  fc.assert(fc.property(fc.constantFrom(...SLOTS), fc.jsonValue({ maxDepth: 3 }), (slot, value) => {
    check(valid(undefined, undefined, { [slot]: '\n' + stringify(value).replace(/^/gm, '        ') }))
  }), { numRuns: 200 })
  t.pass('500 configs with random values')
})

t.test('random YAML documents, and random keys merged into a valid config', async t => {
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 5 }), value => {
    check(stringify(value))
  }), { numRuns: 300 })
  const base = parseConfig(VALID, 'routes.yaml', OPTS)
  t.ok(base.config !== null)
  const raw = parseYaml(VALID) as Record<string, any>
  const where = fc.constantFrom<Array<string>>([], ['server'], ['upstreams'], ['upstreams', 'legacy'], ['contexts'], ['contexts', 'orders'], ['contexts', 'orders', 'match'], ['contexts', 'orders', 'sticky'], ['contexts', 'orders', 'rewrite'])
  fc.assert(fc.property(where, fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), (at, key, value) => {
    const doc = structuredClone(raw)
    let node = doc
    for (const k of at) node = node[k]
    node[key] = value
    check(stringify(doc))
  }), { numRuns: 300 })
  fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), text => { check(text) }), { numRuns: 300 })
})

/** Every prefix of `text` by UTF-16 offset (the base config is ASCII: every byte offset). */
function truncations (text: string): string[] {
  return Array.from({ length: text.length }, (_, i) => text.slice(0, i))
}

t.test('a valid config truncated at every byte offset: a config or positioned errors, every time', async t => {
  let accepted = 0
  for (const prefix of truncations(VALID)) if (check(prefix).config !== null) accepted++
  // Cut at a line end after `default:`, a prefix is a smaller valid config: a
  // file caught mid-write can route differently, which is why reloads are debounced.
  t.ok(accepted < VALID.length / 4, `${accepted} of ${VALID.length} prefixes are themselves valid configs`)
})

/** The billion-laughs pattern, `levels` deep, `width` wide. */
function laughs (levels: number, width: number): string {
  const lines = [`l0: &l0 [${Array(width).fill('"lol"').join(', ')}]`]
  for (let i = 1; i < levels; i++) lines.push(`l${i}: &l${i} [${Array(width).fill(`*l${i - 1}`).join(', ')}]`)
  return lines.join('\n') + '\n'
}

/** Inputs parseConfig must refuse. */
const HOSTILE: Record<string, string> = {
  'billion laughs': laughs(9, 9),
  'billion laughs inside a valid config': VALID + 'x-bomb: ' + '\n' + laughs(9, 9).replace(/^/gm, '  '),
  'billion laughs as a context path list': valid(undefined, undefined, { paths: '*l8' }).replace('server:', laughs(9, 9) + 'server:'),
  '101 aliases': 'a: &a /x\n' + Array.from({ length: 101 }, (_, i) => `k${i}: *a`).join('\n') + '\n' + VALID,
  'an alias to a big mapping, 100 times': 'big: &big {' + Array.from({ length: 1000 }, (_, i) => `k${i}: ${i}`).join(', ') + '}\n' + Array.from({ length: 100 }, (_, i) => `c${i}: *big`).join('\n'),
  'a self-referencing alias': 'a: &a [*a]\n' + VALID,
  'an undefined alias': VALID.replace('weight: 100', 'weight: *nowhere'),
  'merge keys': 'base: &b { url: http://a }\n' + VALID.replace('    url: http://legacy.internal:8080', '    <<: *b'),
  '10,000-deep flow sequences': 'a: ' + '['.repeat(10_000) + ']'.repeat(10_000),
  '10,000-deep flow mappings': 'a: ' + '{a: '.repeat(10_000) + '1' + '}'.repeat(10_000),
  '10,000-deep block sequences': '- '.repeat(10_000) + 'x',
  '10,000-deep explicit keys': '? '.repeat(10_000) + 'x',
  '10,000-deep, unclosed': '{a: ['.repeat(5_000),
  '10,000-deep inside a valid config': valid(undefined, undefined, { paths: '['.repeat(10_000) + '/api' + ']'.repeat(10_000) }),
  '1,400 levels of indentation (just under 1 MiB)': Array.from({ length: 1_400 }, (_, i) => ' '.repeat(i) + 'a:').join('\n'),
  '2 MB of one key': 'k'.repeat(2 * 1024 * 1024) + ': 1\n',
  '2 MB of short invalid lines': '- : [\n'.repeat(350_000),
  '2 MB of flow garbage': '{[}]:,&*!|>\'"%@`'.repeat(131_072),
  'empty': '',
  'only a BOM': '\uFEFF',
  'NUL bytes': VALID.replace('legacy:', 'leg\u0000acy:'),
  'tabs for indentation': VALID.replace(/^ {2}/gm, '\t'),
  'a second document': VALID + '---\n' + VALID,
  '%YAML 1.1': '%YAML 1.1\n---\n' + VALID,
  'a custom tag': VALID.replace('weight: 100', 'weight: !!js/function "function () { return 100 }"'),
  'a local tag': VALID.replace('weight: 100', 'weight: !weight 100'),
  'a verbatim tag': VALID.replace('weight: 100', 'weight: !<tag:yaml.org,2002:js/undefined> ""'),
  '!!binary': VALID.replace('weight: 100', 'weight: !!binary aGVsbG8='),
  '!!set and !!omap': VALID.replace('methods: [GET, POST]', 'methods: !!set { GET, POST }'),
  'weight .nan': VALID.replace('weight: 100', 'weight: .nan'),
  'weight .inf': VALID.replace('weight: 100', 'weight: .inf'),
  'weight 1e309': VALID.replace('weight: 100', 'weight: 1e309'),
  '__proto__ keys': VALID.replace('upstreams:\n', 'upstreams:\n  __proto__: { url: "http://evil" }\n').replace('default: legacy', 'default: __proto__'),
  'constructor as an upstream and context': VALID.replace('default: legacy', 'default: constructor').replace('upstreams:\n', 'upstreams:\n  constructor:\n    url: http://evil\n').replace('contexts:\n', 'contexts:\n  toString:\n    match: { paths: [/x] }\n    legacy: constructor\n    new: evil\n    weight: 5\n'),
  'duplicate keys': VALID.replace('default: legacy', 'default: legacy\ndefault: orders-svc'),
  'an unset ${VAR}': VALID.replace('${TOKEN:-fallback}', '${STRANGLER_UNSET_VARIABLE_FOR_TEST}'),
  '${VAR} that expands to YAML': VALID.replace('weight: 100', 'weight: ${TOKEN}'),
  'weight 100.001': VALID.replace('weight: 100', 'weight: 100.001'),
  'weight "100"': VALID.replace('weight: 100', 'weight: "100"'),
  'a 100,000-character key': VALID.replace('contexts:\n', `contexts:\n  ${'c'.repeat(100_000)}:\n    match: { paths: [/y] }\n    legacy: legacy\n    new: orders-svc\n    weight: 1\n`),
  'thousands of errors': 'upstreams: {}\ndefault: nowhere\ncontexts:\n' + Array.from({ length: 2_000 }, (_, i) => `  c${i}: { match: { paths: [x] }, legacy: a, new: b, weight: 500, bogus: 1 }`).join('\n'),
  'unicode confusables in names': VALID.replace('default: legacy', 'default: l\u0435gacy').replace('/api/orders]', '/api/\uff4frders]')
}

/** Odd inputs that may be valid configs: they only need a well-formed answer (the 2 MB ones are refused by size when loaded from a file). */
const ODD: Record<string, string> = {
  'weight 0x64': VALID.replace('weight: 100', 'weight: 0x64'),
  'weight -0.0': VALID.replace('weight: 100', 'weight: -0.0'),
  '2 MB of comments after a valid config': VALID + '# filler\n'.repeat(233_017),
  '2 MB string value': VALID.replace('x-user-id', 'x'.repeat(2 * 1024 * 1024)),
  'CRLF line endings and a BOM': '\uFEFF' + VALID.replace(/\n/g, '\r\n'),
  'an unterminated ${': VALID.replace('${TOKEN:-fallback}', '${TOKEN'),
  'nested ${': VALID.replace('${TOKEN:-fallback}', '${A:-${B:-${C}}}'),
  'lone surrogates': VALID.replace('x-user-id', 'x-\ud800-id')
}

t.test('alias bombs, deep nesting, huge files and odd YAML: refused with positioned errors, never a throw or a hang', async t => {
  for (const [name, text] of Object.entries(HOSTILE)) {
    let r: ParseResult | undefined
    t.doesNotThrow(() => { r = check(text) }, name)
    if (r !== undefined) t.ok(r.config === null, `${name}: refused (${r.errors.length} errors, first: ${r.errors[0]?.message.slice(0, 120)})`)
  }
  for (const [name, text] of Object.entries(ODD)) t.doesNotThrow(() => { check(text) }, `${name}: a config or positioned errors`)
  t.match(check(HOSTILE['an undefined alias']).errors.map(e => e.message), [/nowhere/], 'an undefined alias is named, not called a bomb')
})

t.test('loading from a file: over 1 MiB and invalid UTF-8 are refused before parsing', async t => {
  const dir = tempDir(t)
  const big = path.join(dir, 'big.yaml')
  writeFileSync(big, ODD['2 MB of comments after a valid config'])
  const r = loadConfigFile(big, OPTS)
  t.equal(r.config, null)
  t.match(r.errors[0]?.message, /bytes; the limit is 1048576/)
  const binary = path.join(dir, 'binary.yaml')
  writeFileSync(binary, Buffer.concat([Buffer.from(VALID), Buffer.from([0xc0, 0xae, 0xff, 0xfe])]))
  t.match(loadConfigFile(binary, OPTS).errors.map(e => e.message), ['the config file is not valid UTF-8'])
})

t.test('while serving, reloading any of these changes nothing: same upstream, same path, same config, still answering', async t => {
  const legacy = await upstream(t, 'legacy')
  const orders = await upstream(t, 'orders-svc')
  const good = valid(legacy.url, orders.url)
  const p = await proxy(t, good, { env: OPTS.env })
  const hash = p.config.hash
  const probe = async (): Promise<string[]> => Promise.all([
    get(`${p.base}/api/orders/7`, { headers: { host: 'shop.example.com' } }),
    get(`${p.base}/api/carts`, { headers: { host: 'shop.example.com' } }),
    get(`${p.base}/other`)
  ].map(async r => { const res = await r; return `${res.status} ${res.body}` }))
  const before = await probe()
  t.strictSame(before, [
    `200 ${JSON.stringify({ name: 'orders-svc', method: 'GET', url: '/v2/orders/7' })}`,
    `200 ${JSON.stringify({ name: 'legacy', method: 'GET', url: '/api/carts' })}`,
    `200 ${JSON.stringify({ name: 'legacy', method: 'GET', url: '/other' })}`
  ], 'the routing under test')

  // Every hostile input that is invalid as a file: refused by parseConfig, or over the 1 MiB limit.
  const inputs: Array<[string, string | Buffer]> = Object.entries({ ...HOSTILE, ...ODD })
    .filter(([, text]) => invalidAsFile(text))
  inputs.push(['invalid UTF-8', Buffer.concat([Buffer.from(good), Buffer.from([0xc0, 0xae])])])
  const cuts = truncations(good).map((text, at) => [`truncated at ${at}`, text] as [string, string]).filter(([, text]) => invalidAsFile(text))
  for (let i = 0; i < cuts.length; i += 8) inputs.push(cuts[i])
  fc.sample(fc.tuple(fc.nat({ max: good.length }), fc.string({ unit: 'binary', minLength: 1, maxLength: 30 })), { numRuns: 200 })
    .map(([at, junk]) => good.slice(0, at) + junk + good.slice(at))
    .filter(text => invalidAsFile(text))
    .slice(0, 50)
    .forEach((text, i) => inputs.push([`spliced #${i}`, text]))

  for (const [name, content] of inputs) {
    writeFileSync(p.file, content)
    const result = await p.reload('admin')
    t.equal(result.ok, false, `${name}: the reload is refused`)
    t.equal(p.config.hash, hash, `${name}: the config in force is unchanged`)
    t.strictSame(await probe(), before, `${name}: every request lands where it did, with the same path`)
  }
  t.ok(inputs.length > 150, `${inputs.length} hostile reloads`)
  writeFileSync(p.file, good)
  t.strictSame(await p.reload('admin'), { ok: true, changed: false, hash }, 'and the good file is accepted again as the same config')
})
