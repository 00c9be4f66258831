import { compileTable } from '../src/routing/table.ts'
import { parseConfig, type ParseResult } from '../src/config/index.ts'

/*
 * Hostile config files: random, truncated, alias bombs, deep nesting, huge.
 * parseConfig must answer every one with a config or with errors that point
 * into the file, never throw, never hang; a config it accepts must compile.
 * A proxy asked to reload any invalid one keeps routing exactly as before.
 */

export const OPTS = { env: { TOKEN: 't0k' }, unsetVars: 'error' as const }

/** A config using every section, with `slots` to put hostile values in. */
export function valid (legacy = 'http://legacy.internal:8080', orders = 'http://orders.internal:3000', slot: Partial<Record<Slot, string>> = {}): string {
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
export const SLOTS = Object.keys(DEFAULT_SLOTS) as Slot[]

export const VALID = valid()

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

export function check (text: string): ParseResult {
  const r = parseConfig(text, 'routes.yaml', OPTS)
  wellFormed(r, text)
  checked.set(text, r)
  return r
}

/** True when loading `text` from a file must fail: over the 1 MiB limit, or refused by parseConfig. */
export function invalidAsFile (text: string): boolean {
  return Buffer.byteLength(text) > 1024 * 1024 || (checked.get(text) ?? check(text)).config === null
}

/** Every prefix of `text` by UTF-16 offset (the base config is ASCII: every byte offset). */
export function truncations (text: string): string[] {
  return Array.from({ length: text.length }, (_, i) => text.slice(0, i))
}

/** The billion-laughs pattern, `levels` deep, `width` wide. */
function laughs (levels: number, width: number): string {
  const lines = [`l0: &l0 [${Array(width).fill('"lol"').join(', ')}]`]
  for (let i = 1; i < levels; i++) lines.push(`l${i}: &l${i} [${Array(width).fill(`*l${i - 1}`).join(', ')}]`)
  return lines.join('\n') + '\n'
}

/** Inputs parseConfig must refuse. */
export const HOSTILE: Record<string, string> = {
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
export const ODD: Record<string, string> = {
  'weight 0x64': VALID.replace('weight: 100', 'weight: 0x64'),
  'weight -0.0': VALID.replace('weight: 100', 'weight: -0.0'),
  '2 MB of comments after a valid config': VALID + '# filler\n'.repeat(233_017),
  '2 MB string value': VALID.replace('x-user-id', 'x'.repeat(2 * 1024 * 1024)),
  'CRLF line endings and a BOM': '\uFEFF' + VALID.replace(/\n/g, '\r\n'),
  'an unterminated ${': VALID.replace('${TOKEN:-fallback}', '${TOKEN'),
  'nested ${': VALID.replace('${TOKEN:-fallback}', '${A:-${B:-${C}}}'),
  'lone surrogates': VALID.replace('x-user-id', 'x-\ud800-id')
}
