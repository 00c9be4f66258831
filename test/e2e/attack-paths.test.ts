import { rawRequest } from '../faults.ts'
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { parseConfig } from '../../src/config/index.ts'
import { configuredWeight, decide } from '../../src/routing/decide.ts'
import { matchContext } from '../../src/routing/match.ts'
import { canonicalize } from '../../src/routing/path.ts'
import { compileTable } from '../../src/routing/table.ts'
import { proxy, upstream, type NamedUpstream } from '../helpers.ts'

/*
 * Path bypasses, judged on what each upstream actually receives. Requests are
 * written byte for byte on a raw socket: an HTTP client would normalise them.
 *
 * The routing under attack: /api/orders goes to orders-svc (stripPrefix /api),
 * /api/public to public-svc (stripPrefix /api/public), /api/orders/internal
 * stays on legacy, and everything else (/admin among it) is the default, legacy.
 */

const HOST = 'shop.example.com'

function config (legacy: string, orders: string, pub: string): string {
  return `server:
  listen: 127.0.0.1:0
  admin: 127.0.0.1:0
upstreams:
  legacy:
    url: ${legacy}
  orders-svc:
    url: ${orders}
  public-svc:
    url: ${pub}
default: legacy
contexts:
  orders:
    match:
      paths: [/api/orders]
    legacy: legacy
    new: orders-svc
    weight: 100
    rewrite:
      new: { stripPrefix: /api }
  orders-internal:
    match:
      paths: [/api/orders/internal]
    legacy: legacy
    new: orders-svc
    weight: 0
  public:
    match:
      paths: [/api/public]
    legacy: legacy
    new: public-svc
    weight: 100
    rewrite:
      new: { stripPrefix: /api/public }
`
}

// ---------------------------------------------------------------------------
// The reference model, written from the README and nothing else.

interface ModelContext { name: string; prefix: string; upstream: string; strip?: string }

const CONTEXTS: ModelContext[] = [
  { name: 'orders', prefix: '/api/orders', upstream: 'orders-svc', strip: '/api' },
  { name: 'orders-internal', prefix: '/api/orders/internal', upstream: 'legacy' },
  { name: 'public', prefix: '/api/public', upstream: 'public-svc', strip: '/api/public' }
]

type Token = { lit: string } | { esc: string }
const isDot = (tok: Token): boolean => 'lit' in tok && tok.lit === '.'
const endsName = (tok: Token): boolean => ('lit' in tok && tok.lit === ';') || ('esc' in tok && tok.esc === '%3B')

/**
 * The canonical path and the query of a request target (one char per byte,
 * as it is on the wire), or null when it must be refused. `wire`: what Node's
 * HTTP parser lets through at all; it refuses targets with bytes outside
 * printable ASCII before the proxy sees them.
 */
function modelCanonical (target: string, wire: boolean): { path: string; query: string } | null {
  if (wire && /[^\x21-\x7e]/.test(target)) return null
  if (!target.startsWith('/')) return null
  const q = target.indexOf('?')
  const raw = q === -1 ? target : target.slice(0, q)
  const query = q === -1 ? '' : target.slice(q)
  const tokens: Token[] = []
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]
    const code = ch.charCodeAt(0)
    if (ch === '%') {
      const hex = raw.slice(i + 1, i + 3)
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null
      const byte = parseInt(hex, 16)
      if (byte < 0x20 || byte === 0x7f || byte === 0x2f || byte === 0x5c) return null
      const decoded = String.fromCharCode(byte)
      tokens.push(/^[A-Za-z0-9\-._~]$/.test(decoded) ? { lit: decoded } : { esc: `%${hex.toUpperCase()}` })
      i += 2
    } else if (code < 0x20 || code === 0x7f || ch === '\\' || ch === '#' || code > 0xff) {
      return null
    } else if (code > 0x7e || ch === ' ') {
      tokens.push({ esc: `%${code.toString(16).toUpperCase().padStart(2, '0')}` })
    } else {
      tokens.push({ lit: ch })
    }
  }
  const segments: Token[][] = [[]]
  for (const tok of tokens) {
    if ('lit' in tok && tok.lit === '/') segments.push([])
    else segments[segments.length - 1].push(tok)
  }
  for (const segment of segments) {
    const end = segment.findIndex(endsName)
    const name = end === -1 ? segment : segment.slice(0, end)
    if ((name.length === 1 || name.length === 2) && name.every(isDot)) return null
  }
  const path = tokens.map(tok => 'lit' in tok ? tok.lit : tok.esc).join('').replace(/\/{2,}/g, '/')
  return { path, query }
}

function modelContext (path: string): ModelContext | null {
  let best: ModelContext | null = null
  for (const c of CONTEXTS) {
    const boundary = path === c.prefix || (path.startsWith(c.prefix) && (path[c.prefix.length] === '/' || path[c.prefix.length] === ';'))
    if (boundary && (best === null || c.prefix.length > best.prefix.length)) best = c
  }
  return best
}

type Outcome = { refused: true } | { refused: false; upstream: string; url: string; context: string | null }

function model (target: string, wire: boolean): Outcome {
  const canonical = modelCanonical(target, wire)
  if (canonical === null) return { refused: true }
  const { path, query } = canonical
  const c = modelContext(path)
  if (c === null) return { refused: false, upstream: 'legacy', url: path + query, context: null }
  let rest = path
  if (c.strip !== undefined) {
    if (path === c.strip) rest = '/'
    else if (path.startsWith(c.strip + '/')) rest = path.slice(c.strip.length)
    else if (path.startsWith(c.strip + ';')) rest = '/' + path.slice(c.strip.length)
  }
  return { refused: false, upstream: c.upstream, url: rest + query, context: c.name }
}

// ---------------------------------------------------------------------------
// Raw sockets.

interface RawResponse { status: number; headers: Record<string, string>; body: string }

/** Writes `bytes` on a fresh connection and resolves with everything read until the proxy closes it. */
function exchange (port: number, bytes: Buffer): Promise<Buffer> {
  return rawRequest(port, bytes).then(r => r.bytes)
}

/** The responses in `buf`, each framed by its Content-Length (every response here has one). */
function responses (buf: Buffer): RawResponse[] {
  const out: RawResponse[] = []
  let text = buf.toString('latin1')
  while (text.length > 0) {
    const end = text.indexOf('\r\n\r\n')
    if (end === -1) throw new Error(`incomplete response: ${JSON.stringify(text)}`)
    const [statusLine, ...lines] = text.slice(0, end).split('\r\n')
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
    }
    const length = Number(headers['content-length'])
    if (!Number.isInteger(length)) throw new Error(`response without content-length: ${JSON.stringify(text)}`)
    out.push({ status: Number(statusLine.split(' ')[1]), headers, body: text.slice(end + 4, end + 4 + length) })
    text = text.slice(end + 4 + length)
  }
  return out
}

function requestBytes (target: string, method = 'GET'): Buffer {
  return Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`, 'latin1')
}

interface Rig { port: number; upstreams: NamedUpstream[] }

async function rig (t: Test): Promise<Rig> {
  const legacy = await upstream(t, 'legacy')
  const orders = await upstream(t, 'orders-svc')
  const pub = await upstream(t, 'public-svc')
  const p = await proxy(t, config(legacy.url, orders.url, pub.url))
  return { port: p.proxyPort, upstreams: [legacy, orders, pub] }
}

/** What happened to one raw request: refused (with or without the proxy's JSON), or who received which URL. */
type Observed =
  | { refused: 'bad_path' | 'parser'; seen: number }
  | { upstream: string; url: string; status: number; seen: number }

async function send (r: Rig, target: string, method = 'GET'): Promise<Observed> {
  const before = r.upstreams.map(u => u.seen.length)
  const got = responses(await exchange(r.port, requestBytes(target, method)))
  const fresh = r.upstreams.flatMap((u, i) => u.seen.slice(before[i]).map(s => ({ upstream: u.name, url: s.url })))
  if (got.length !== 1) throw new Error(`${JSON.stringify(target)}: ${got.length} responses`)
  const [res] = got
  if (res.status === 400) {
    const refused = res.body === '' ? 'parser' : (JSON.parse(res.body) as { code: string }).code === 'STRANGLER_BAD_PATH' ? 'bad_path' : 'other' as never
    return { refused, seen: fresh.length }
  }
  if (fresh.length !== 1) return { upstream: fresh.map(f => f.upstream).join('+') || 'none', url: fresh.map(f => f.url).join(' '), status: res.status, seen: fresh.length }
  return { upstream: fresh[0].upstream, url: fresh[0].url, status: res.status, seen: 1 }
}

const latin1 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1')

/** Refused by the proxy with 400 STRANGLER_BAD_PATH; no upstream saw anything. */
const badPath: Observed = { refused: 'bad_path', seen: 0 }
/** Refused by Node's HTTP parser (400, empty body) before the proxy sees it; no upstream saw anything. */
const parser: Observed = { refused: 'parser', seen: 0 }
const to = (upstream: string, url: string): Observed => ({ upstream, url, status: 200, seen: 1 })

t.test('every known path-bypass payload: refused, or received by exactly the upstream its canonical path routes to', async t => {
  const r = await rig(t)
  const cases: Array<[string, Observed, string?]> = [
    // controls: the routing works as configured
    ['/api/orders/7', to('orders-svc', '/orders/7')],
    ['/api/orders', to('orders-svc', '/orders')],
    ['/api/orders/internal/x', to('legacy', '/api/orders/internal/x')],
    ['/api/public', to('public-svc', '/')],
    ['/api/public/x', to('public-svc', '/x')],
    ['/admin', to('legacy', '/admin')],

    // dot segments, however spelled
    ['/api/../admin', badPath],
    ['/api/orders/../../admin', badPath],
    ['/api/public/../orders/internal', badPath],
    ['/api/%2e%2e/admin', badPath],
    ['/api/%2E%2E/admin', badPath],
    ['/api/.%2e/admin', badPath],
    ['/api/%2e./admin', badPath],
    ['/api/orders/%2e/internal', badPath],
    ['/api/orders/./internal', badPath],
    ['/api/orders/..', badPath],
    ['/api/orders/%2e%2e', badPath],
    ['/api/orders/%2e%2e?x=1', badPath],
    ['/api/orders;/../admin', badPath],
    ['/api/..;/admin', badPath],
    ['/api/orders/..;x=1/internal', badPath],
    ['/api/orders/..%3b/admin', badPath],
    ['/api/orders/..%3B/admin', badPath],

    // encoded separators, NUL
    ['/api/..%2fadmin', badPath],
    ['/api/..%2Fadmin', badPath],
    ['/api%2F..%2Fadmin', badPath],
    ['/api/orders%2F..%2F..%2Fadmin', badPath],
    ['/api/orders%2finternal', badPath],
    ['/api/orders%5C..%5Cadmin', badPath],
    ['/api/orders%5c..%5cadmin', badPath],
    ['/api/..\\admin', badPath],
    ['/api\\orders', badPath],
    ['/api/orders%00', badPath],
    ['/api/orders%00/../admin', badPath],
    ['/api/orders%0d%0aX-Injected:%201', badPath],

    // double encoding stays data: %25 is kept, so %252e is never a dot
    ['/api/%252e%252e/admin', to('legacy', '/api/%252e%252e/admin')],
    ['/api/orders/%252e%252e/admin', to('orders-svc', '/orders/%252e%252e/admin')],
    ['/api/public/..%252f..%252fadmin', to('public-svc', '/..%252f..%252fadmin')],
    ['/api/orders/%252f', to('orders-svc', '/orders/%252f')],

    // runs of slashes are merged before matching
    ['//admin', to('legacy', '/admin')],
    ['/api//orders', to('orders-svc', '/orders')],
    ['//api//orders//7', to('orders-svc', '/orders/7')],
    ['/api/orders//internal', to('legacy', '/api/orders/internal')],
    ['/api/orders///internal/', to('legacy', '/api/orders/internal/')],

    // unreserved escapes are decoded before matching
    ['/%61pi/orders', to('orders-svc', '/orders')],
    ['/api/%6Frders/internal', to('legacy', '/api/orders/internal')],
    ['/api/orders/%69nternal', to('legacy', '/api/orders/internal')],
    ['/api/orders/internal%2e', to('orders-svc', '/orders/internal.')],

    // matrix parameters: ';' is a segment boundary, '%3B' is data
    ['/api/orders;v=1', to('orders-svc', '/orders;v=1')],
    ['/api/orders/internal;jsessionid=1', to('legacy', '/api/orders/internal;jsessionid=1')],
    ['/api/public;x', to('public-svc', '/;x')],
    ['/api;/orders', to('legacy', '/api;/orders')],
    ['/api/orders%3Bv=1', to('legacy', '/api/orders%3Bv=1')],

    // fragments are never part of a request target
    ['/api/orders#/../admin', badPath],
    ['/api/orders#x', badPath],
    ['/api/orders/%23/../admin', badPath],
    ['/api/orders/%23', to('orders-svc', '/orders/%23')],

    // unicode: raw UTF-8 is refused by Node's parser; escapes are kept, upper-cased
    [latin1('/api/orders/café'), parser, 'raw UTF-8 bytes'],
    [latin1('/api/orders/\u2025/admin'), parser, 'raw UTF-8 two-dot leader'],
    [latin1('/api/\uff0e\uff0e/admin'), parser, 'raw UTF-8 fullwidth dots'],
    [latin1('/api/\uff05\uff12\uff45\uff05\uff12\uff45/admin'), parser, 'raw UTF-8 fullwidth ％２ｅ'],
    ['/api/orders/caf%c3%a9', to('orders-svc', '/orders/caf%C3%A9')],
    ['/api/%C0%AE%C0%AE/admin', to('legacy', '/api/%C0%AE%C0%AE/admin'), 'overlong UTF-8 dots'],
    ['/api/orders/%c0%ae%c0%ae/internal', to('orders-svc', '/orders/%C0%AE%C0%AE/internal'), 'overlong UTF-8 dots'],
    ['/api/%C0%AF/admin', to('legacy', '/api/%C0%AF/admin'), 'overlong UTF-8 slash'],
    ['/api/%EF%BC%8E%EF%BC%8E/admin', to('legacy', '/api/%EF%BC%8E%EF%BC%8E/admin'), 'fullwidth dots, escaped'],
    ['/api/%ef%bc%85%ef%bc%92%ef%bd%85/admin', to('legacy', '/api/%EF%BC%85%EF%BC%92%EF%BD%85/admin'), 'fullwidth ％２ｅ, escaped'],
    ['/api/orders%u002e%u002e/admin', badPath, 'IIS %u escapes are malformed escapes'],

    // case: paths are case-sensitive; /API is not /api
    ['/API/orders', to('legacy', '/API/orders')],
    ['/api/ORDERS', to('legacy', '/api/ORDERS')],
    ['/Api/Orders/internal', to('legacy', '/Api/Orders/internal')],
    ['/%41PI/orders', to('legacy', '/API/orders')],

    // trailing dots make another segment name: no prefix match
    ['/api/orders.', to('legacy', '/api/orders.')],
    ['/api/orders..', to('legacy', '/api/orders..')],
    ['/api/orders%2e', to('legacy', '/api/orders.')],
    ['/api/orders/internal.', to('orders-svc', '/orders/internal.')],
    ['/api/orders/internal..', to('orders-svc', '/orders/internal..')],
    ['/api/orders/...', to('orders-svc', '/orders/...')],
    ['/api/orders/%2e%2e%2e', to('orders-svc', '/orders/...')],

    // controls inside the target
    ['/api/orders\t/../admin', parser],
    ['/api/or\rders', parser],
    ['/api/orders\x00', parser],
    ['/api/orders\x7f', parser],

    // absolute-form (RFC 9112 §3.2.2): made origin-form, routed and forwarded by its path
    ['http://evil/api/orders', to('orders-svc', '/orders'), 'absolute-form'],
    ['http://shop.example.com/api/orders', to('orders-svc', '/orders'), 'absolute-form for this very host'],
    ['HTTP://shop.example.com:80/api/orders?x=/../admin', to('orders-svc', '/orders?x=/../admin'), 'absolute-form with a port and a query'],
    ['http://shop.example.com/api/%2e%2e/admin', badPath, 'absolute-form is canonicalised like any path'],
    ['http://shop.example.com', to('legacy', '/'), 'absolute-form without a path'],
    ['http://user@shop.example.com/api/orders', badPath, 'userinfo: not made origin-form'],
    ['ftp://shop.example.com/api/orders', badPath, 'not http(s)'],

    // not origin-form
    ['api/orders', parser],
    ['*', badPath],

    // the query is forwarded untouched and never routes
    ['/api/orders?x=/../admin', to('orders-svc', '/orders?x=/../admin')],
    ['/admin?/api/orders', to('legacy', '/admin?/api/orders')],
    ['/api/orders?%2e%2e%2f%00', to('orders-svc', '/orders?%2e%2e%2f%00')]
  ]
  for (const [target, want, note] of cases) {
    t.strictSame(await send(r, target), want, `${JSON.stringify(target)}${note === undefined ? '' : ` (${note})`}`)
  }
  t.strictSame(await send(r, '*', 'OPTIONS'), badPath, 'OPTIONS *')
})

t.test('the payload table agrees with the reference model', async t => {
  // The model must predict every outcome pinned above; it is the oracle of the fuzz tests below.
  for (const [target, refused] of [
    ['/api/%2e%2e/admin', true], ['/api/..;/admin', true], ['/api/orders%3Bv=1', false], ['//admin', false],
    ['/api/%252e%252e/admin', false], [latin1('/api/orders/café'), true], ['*', true], ['/api/orders\t', true]
  ] as const) {
    t.equal(model(target, true).refused, refused, JSON.stringify(target))
  }
  t.strictSame(model('/api/public;x', true), { refused: false, upstream: 'public-svc', url: '/;x', context: 'public' })
  t.strictSame(model('/api/orders//internal?q', true), { refused: false, upstream: 'legacy', url: '/api/orders/internal?q', context: 'orders-internal' })
  t.strictSame(model(latin1('/api/orders/é'), false), { refused: false, upstream: 'orders-svc', url: '/orders/%C3%A9', context: 'orders' })
})

// ---------------------------------------------------------------------------
// Property-based: request targets built from the pieces attacks are made of.

const PIECES = [
  '/', '/', '/', '.', '.', '..', '%2e', '%2E', '%2f', '%2F', '%5c', '%5C', '%00', ';', '%3b', '%3B',
  '%25', '%41', '%61', '%6f', '%', '2e', 'a', 'orders', 'api', 'public', 'internal', '\\', '#', '?'
]
const piece = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...PIECES) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }).map(b => String.fromCharCode(b)) }
)
const HEADS = ['/', '//', '/api', '/api/', '/api/orders', '/api/orders/', '/api/orders/internal', '/api/public', '/API/orders', '']
const target = fc.tuple(fc.constantFrom(...HEADS), fc.array(piece, { maxLength: 12 })).map(([head, parts]) => head + parts.join(''))

t.test('fuzz through a real proxy: no request reaches an upstream its canonical path does not route to', async t => {
  const r = await rig(t)
  let forwarded = 0
  await fc.assert(fc.asyncProperty(target, async raw => {
    const want = model(raw, true)
    const got = await send(r, raw)
    if (want.refused) {
      // Either layer may refuse; neither may let anything through.
      if (!('refused' in got) || got.seen !== 0) throw new Error(`model refuses, proxy gave ${JSON.stringify(got)}`)
      return
    }
    forwarded++
    const expected = to(want.upstream, want.url)
    if (JSON.stringify(got) !== JSON.stringify(expected)) throw new Error(`expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`)
  }), { numRuns: 300 })
  t.ok(forwarded >= 30, `the property is not vacuous: ${forwarded} of 300 requests were forwarded`)
})

t.test('fuzz the pure router: canonicalize, matchContext and decide agree with the model', async t => {
  const parsed = parseConfig(config('http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3'), 'routes.yaml', { env: {}, unsetVars: 'error' })
  if (parsed.config === null) throw new Error(JSON.stringify(parsed.errors))
  const table = compileTable(parsed.config)
  let forwarded = 0
  fc.assert(fc.property(target, raw => {
    const want = model(raw, false)
    const canonical = canonicalize(raw)
    if (want.refused) {
      if (canonical !== null) throw new Error(`model refuses, canonicalize gave ${JSON.stringify(canonical)}`)
      return
    }
    forwarded++
    const wantCanonical = modelCanonical(raw, false)
    if (JSON.stringify(canonical) !== JSON.stringify(wantCanonical)) throw new Error(`canonical: expected ${JSON.stringify(wantCanonical)}, got ${JSON.stringify(canonical)}`)
    const ctx = matchContext(table, HOST, 'GET', (canonical as { path: string }).path)
    if ((ctx?.name ?? null) !== want.context) throw new Error(`context: expected ${want.context}, got ${ctx?.name ?? null}`)
    const d = decide(table, configuredWeight, 'GET', raw, { host: HOST })
    if (d === null || d.upstream.name !== want.upstream || d.path !== want.url) {
      throw new Error(`decision: expected ${want.upstream} ${want.url}, got ${d === null ? 'null' : `${d.upstream.name} ${d.path}`}`)
    }
  }), { numRuns: 20_000 })
  t.ok(forwarded >= 2000, `the property is not vacuous: ${forwarded} of 20,000 targets were forwarded`)
})
