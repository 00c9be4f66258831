import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import t from 'tap'
import { checkYaml } from '../../src/config/check-yaml.ts'
import { MAX_ALIAS_COUNT, parseWithDocument, quickConfig } from '../../src/config/parse.ts'
import { readPlain, REFUSED } from '../../src/config/read-plain.ts'
import { readYaml } from '../../src/config/read-yaml.ts'
import { Report } from '../../src/config/report.ts'

// The quick path (js-yaml) must read every file it accepts exactly as yaml's
// Document path does, and refuse the rest: the proxy must never route
// differently because of which parser ran.

const REJECTED = Symbol('rejected')

/** The plain value the Document path gives, or REJECTED when it reports anything. */
function documentValue (text: string): unknown {
  const report = new Report('t.yaml', text)
  const doc = readYaml(text, report)
  if (doc === null || !checkYaml(doc, text, report, new Set()) || report.errors.length + report.warnings.length > 0) return REJECTED
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT })
  } catch {
    return REJECTED
  }
}

/** Key order, -0, NaN, ±Infinity, and any object that is not plain data (such as a yaml node) tell values apart. */
function canonical (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (typeof value === 'object' && value !== null) {
    const proto: unknown = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) return `<not plain: ${String((proto as object).constructor?.name)}>`
    const entries = value as Record<string, unknown>
    return `{${Object.keys(entries).map(k => `${JSON.stringify(k)}:${canonical(entries[k])}`).join(',')}}`
  }
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value)
  return JSON.stringify(value) ?? String(value)
}

/** A test name TAP keeps on one line (U+2028 would end it). */
function ascii (text: string): string {
  return JSON.stringify(text).replace(/[^\x20-\x7e]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** Accepted by the quick path ⇒ accepted by the Document path with the same value. */
function agrees (text: string): boolean {
  const quick = readPlain(text)
  if (quick === REFUSED) return true
  const full = documentValue(text)
  return full !== REJECTED && canonical(quick) === canonical(full)
}

const TRICKY = [
  'yes', 'no', 'on', 'off', 'y', 'n', 'true', 'True', 'TRUE', 'tRUE', 'false', 'null', 'Null', 'NULL', '~', '',
  '0o17', '012', '0x1F', '0X1F', '0b101', '1_000', '1e3', '1E3', '-1e-3', '+12', '-0', '0', '1.', '.5', '1.0', '0.',
  '.inf', '-.inf', '+.Inf', '.nan', '.NaN', 'NaN', 'Infinity',
  '2001-12-14', '2001-12-14t21:59:43.10-05:00', '12:30:45', '1:20', '190:20:30',
  'http://a:80/x?y=1&z=2', '/c/1', 'x-user-id', 'a b', 'a  b', ' a', 'a ', 'a #b', 'a#b', 'a: b', 'a:b', 'x:', ':x',
  '-', '- x', '-x', '?', '? x', '?x', '[x]', '{x: 1}', 'a,b', '*x', '&x', '!x', '!!int 1', '%x', '@x', '`x', '|', '>',
  '"x"', "'x'", "it's", '\\', '\\n', 'tab\there', 'é', '\u00e9', '😀', '\u0085', '\u2028', '${HOME}', '$${X}', '$x',
  '<<', '__proto__', 'constructor', '#', '--- x', '...', 'multi\nline', 'tail\n', '\n\nx', 'a\n  b', '\r\n'
]

const scalar = fc.tuple(fc.constantFrom(...TRICKY), fc.constantFrom('plain', 'single', 'double', 'literal', 'folded')).map(([text, style]) => ({ text, style }))
type Scalar = { text: string; style: string }
type Tree = Scalar | { seq: Tree[]; flow: boolean } | { map: Array<[Scalar, Tree]>; flow: boolean } | { alias: string } | { anchor: string; node: Tree } | { tag: string; node: Tree }
const tree: fc.Arbitrary<Tree> = fc.letrec<{ node: Tree }>(tie => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { arbitrary: scalar, weight: 4 },
    { arbitrary: fc.record({ seq: fc.array(tie('node'), { maxLength: 3 }), flow: fc.boolean() }), weight: 2 },
    { arbitrary: fc.record({ map: fc.array(fc.tuple(scalar, tie('node')), { maxLength: 3 }), flow: fc.boolean() }), weight: 3 },
    { arbitrary: fc.record({ alias: fc.constantFrom('a', 'b') }), weight: 1 },
    { arbitrary: fc.record({ anchor: fc.constantFrom('a', 'b'), node: tie('node') }), weight: 1 },
    { arbitrary: fc.record({ tag: fc.constantFrom('!!str', '!!int', '!!map', '!', '!x', '!<tag:yaml.org,2002:str>'), node: tie('node') }), weight: 1 }
  )
})).node

function quoted (s: Scalar, indent: string): string {
  switch (s.style) {
    case 'single': return `'${s.text.replaceAll("'", "''")}'`
    case 'double': return JSON.stringify(s.text)
    case 'literal': return `|\n${s.text.split('\n').map(l => `${indent}  ${l}`).join('\n')}`
    case 'folded': return `>-\n${s.text.split('\n').map(l => `${indent}  ${l}`).join('\n')}`
    default: return s.text
  }
}

/** YAML text for a tree, in block or flow style as each collection asks; not always valid YAML, on purpose. */
function render (node: Tree, indent: string, inFlow: boolean): string {
  if ('text' in node) return quoted(node, indent)
  if ('alias' in node) return `*${node.alias}`
  if ('anchor' in node) return `&${node.anchor} ${render(node.node, indent, inFlow)}`
  if ('tag' in node) return `${node.tag} ${render(node.node, indent, inFlow)}`
  if ('seq' in node) {
    if (node.flow || inFlow || node.seq.length === 0) return `[${node.seq.map(n => render(n, indent, true)).join(', ')}]`
    return node.seq.map(n => `\n${indent}- ${render(n, indent + '  ', false)}`).join('')
  }
  if (node.flow || inFlow || node.map.length === 0) return `{${node.map.map(([k, v]) => `${quoted(k, indent)}: ${render(v, indent, true)}`).join(', ')}}`
  return node.map.map(([k, v]) => `\n${indent}${quoted(k, indent)}: ${render(v, indent + '  ', false)}`).join('')
}

const document = tree.map(node => render(node, '', false).replace(/^\n/, ''))

/** Edits that break or bend YAML: the quick path must refuse what yaml refuses. */
const edited = fc.tuple(document, fc.nat(), fc.constantFrom(' ', '  ', '\t', '\n', '\n ', ':', ': ', '- ', '#', ' #', ',', '[', ']', '{', '}', '"', "'", '&a ', '*a', '!', '? ', '---\n', '...\n', '%YAML 1.1\n', '\\', '\r', '\uFEFF', '\0'), fc.nat({ max: 3 }))
  .map(([text, at, insert, cut]) => {
    const i = at % (text.length + 1)
    return text.slice(0, i) + insert + text.slice(i + cut)
  })

t.test('plain values: the quick path agrees with yaml or refuses', async t => {
  let quick = 0
  const runs = 3000
  fc.assert(fc.property(document, text => {
    if (readPlain(text) !== REFUSED) quick++
    return agrees(text)
  }), { numRuns: runs })
  // A path that refused everything would agree trivially.
  t.ok(quick > runs / 10, `${quick} of ${runs} documents took the quick path`)
})

t.test('edited documents: the quick path agrees with yaml or refuses', async t => {
  fc.assert(fc.property(edited, agrees), { numRuns: 5000 })
  t.pass()
})

t.test('tricky scalars mean what yaml says they mean', async t => {
  const text = TRICKY.filter(s => !/[\n\r]/.test(s)).map((s, i) => `k${i}: ${s}`).join('\n')
  // Line by line: a scalar that is not valid plain YAML must not take the others down with it.
  let quick = 0
  for (const line of text.split('\n')) {
    for (const doc of [line, `- ${line.replace(/^k\d+: /, '')}`, `[${line.replace(/^k\d+: /, '')}]`, `{${line}}`]) {
      t.ok(agrees(doc), ascii(doc))
      if (readPlain(doc) !== REFUSED) quick++
    }
  }
  t.ok(quick > 100)
  t.strictSame(readPlain('[yes, no, on, 0o17, 012, 0x1F, 0b101, 1_000, 1e3, .inf, -.inf, ~, null, "", 2001-12-14, 1:20, -0, "012"]'),
    ['yes', 'no', 'on', 15, 12, 31, '0b101', '1_000', 1000, Infinity, -Infinity, null, null, '', '2001-12-14', '1:20', -0, '012'])
  t.ok(Number.isNaN((readPlain('[.nan]') as number[])[0]))
})

t.test('what the quick path refuses, and what it reads', async t => {
  const refused = {
    'an anchor': 'a: &x 1\nb: 2',
    'an alias': 'a: &x 1\nb: *x',
    'a merge key with an alias': 'a: &x {k: 1}\nb: {<<: *x}',
    'a tag': 'a: !!str 1',
    'a custom tag': 'a: !env X',
    'the non-specific tag': 'a: ! 1',
    'a directive': '%YAML 1.2\n---\na: 1',
    'an explicit key': '? a\n: 1',
    'a list as a key': '[a]: 1',
    'a number as a key': '1: a',
    'null as a key': '~: a',
    'true as a key': 'true: a',
    'an empty key': '{: a}',
    'a duplicate key': 'a: 1\na: 2',
    'a string over two lines': 'a: "x\n  y"',
    'a plain scalar over two lines': 'a: x\n  y',
    'a block scalar': 'a: |\n  x\n',
    'an empty list item': '- -\n- x',
    'a flow mapping over two lines': 'a: {\n  b: 1\n}',
    'two documents': 'a: 1\n---\nb: 2',
    'a comment glued to a string': 'a: "x"# c',
    'a tab in indentation': 'a:\n\t- x',
    'a key on the document start line': '--- a: 1',
    'a lone CR': 'a: 1\rb: 2',
    'bad YAML': 'a: [1',
    '65 levels': '['.repeat(65) + ']'.repeat(65)
  }
  for (const [what, text] of Object.entries(refused)) t.equal(readPlain(text), REFUSED, what)
  t.strictSame(readPlain('<<: 1\n"1": 2\n__proto__: 3\n# c\nb: [x, {y: z}] # c\nc:\n  - d\n  - ~\n'), JSON.parse('{"1":2,"<<":1,"__proto__":3,"b":["x",{"y":"z"}],"c":["d",null]}'))
  t.strictSame(readPlain('a: 1 # a ? b\n'), REFUSED, 'a "? " even in a comment')
})

const BASE = 'upstreams:\n  l: {url: "http://l"}\n  n: {url: "http://n"}\ndefault: l\n'
const name = fc.constantFrom('orders', 'o.1', 'c-2', '123', '0', '0o17', 'yes', 'null', '1e3', '"007"', "'12'", 'a_b', 'x:y', '__proto__')
const value = fc.constantFrom('50', '0', '100', '50.5', '0o17', '012', '1e1', '"50"', '.inf', '~', 'yes', '-1', '101', '33.333')
const path = fc.constantFrom('/c', '/c/x', '"/c/$${X}"', '/c/${P}', '/c/${P:-d}', '/ä', '/c?x', '/c#x', "'/c'", '/c/*')
const context = fc.tuple(name, path, value, fc.boolean(), fc.boolean(), fc.constantFrom('l', 'n', 'x', '"l"'), fc.constantFrom('', ' # c', '  #: c'))
  .map(([n, p, w, sticky, flow, legacy, comment]) => flow
    ? `  ${n}: {match: {paths: [${p}]}, legacy: ${legacy}, new: n, weight: ${w}${sticky ? ', sticky: {header: x-id}' : ''}}${comment}\n`
    : `  ${n}:${comment}\n    match:\n      paths:\n        - ${p}${comment}\n    legacy: ${legacy}\n    new: n\n    weight: ${w}${comment}\n${sticky ? '    sticky:\n      header: x-id\n' : ''}`)
const config = fc.array(context, { maxLength: 4 }).map(cs => `${BASE}contexts:\n${cs.join('')}`)
const env = { P: 'p', X: 'x' }

t.test('configs: the quick path gives the Document path\'s exact Config or refuses', async t => {
  let quick = 0
  const runs = 1500
  fc.assert(fc.property(fc.oneof(config, config.chain(text => fc.tuple(fc.nat(text.length), fc.constantFrom(' ', '\n', ':', '- ', '#', '"', '{', ']', '\t'))
    .map(([at, insert]) => text.slice(0, at) + insert + text.slice(at)))), text => {
    const fast = quickConfig(text, 'routes.yaml', env, 'hash')
    if (fast === null) return true
    quick++
    const full = parseWithDocument(text, 'routes.yaml', { env, unsetVars: 'error' }, 'hash')
    return full.errors.length + full.warnings.length === 0 && canonical(fast) === canonical(full.config)
  }), { numRuns: runs })
  t.ok(quick > runs / 10, `${quick} of ${runs} configs took the quick path`)
})

t.test('the example files and the benchmark\'s 10,000 contexts take the quick path, to the same Config', async t => {
  const many = Array.from({ length: 10_000 }, (_, i) => `  c${i}: {match: {paths: [/c/${i}]},legacy: l,new: n,weight: 50,sticky: {header: x-user-id}${i % 4 === 0 ? ',rewrite: {new: {stripPrefix: /c}}' : ''}}\n`)
  const design = readFileSync(new URL('../fixtures/config/design-example.yaml', import.meta.url), 'utf8')
  const files = {
    'design-example.yaml': design,
    'design-example.yaml with CRLF line ends': design.replaceAll('\n', '\r\n'),
    'config/routes.yaml': readFileSync(new URL('../../config/routes.yaml', import.meta.url), 'utf8'),
    '10,000 contexts': `${BASE}contexts:\n${many.join('')}`
  }
  const env = { STRANGLER_ADMIN_TOKEN: 's3cret' }
  for (const [what, text] of Object.entries(files)) {
    const quick = quickConfig(text, 'routes.yaml', env, 'hash')
    t.not(quick, null, what)
    t.strictSame(quick, parseWithDocument(text, 'routes.yaml', { env, unsetVars: 'error' }, 'hash').config, what)
  }
})
