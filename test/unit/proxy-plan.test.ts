import t from 'tap'
import type { AnswerMap, Answers } from '../../src/routing/answers.ts'
import { configuredWeight, decide, type Decision } from '../../src/routing/decide.ts'
import { compileTable } from '../../src/routing/table.ts'
import { trustList } from '../../src/proxy/headers.ts'
import { plan, type PlanRequest, type PlanSettings } from '../../src/proxy/plan.ts'
import { untraced } from '../../src/proxy/tracing.ts'
import type { Config, Fallback, Shadow } from '../../src/types.ts'
import { configOf, type ContextSpec } from '../fixtures/config.ts'

const fallback: Fallback = { on5xx: true, methods: ['GET', 'HEAD', 'OPTIONS', 'PUT'], maxBodyBytes: 100 }
const shadow: Shadow = { percent: 10, methods: ['GET'], maxBodyBytes: 65536, headers: [], ignore: [], redactHeaders: [], redactFields: [], learnNoise: 0 }
/** A trusted peer's X-Request-Id is kept: the headers below are exact. */
const settings: PlanSettings = { trust: trustList(['10.0.0.0/8']), dropUnderscores: true, maxBodyBytes: 0, table: { defaultAnswers: null } }

function decided (spec: Partial<ContextSpec>, method: string, url: string, edit: (c: Config) => void = () => {}): Decision {
  const config = configOf([{ name: 'orders', paths: ['/api/orders'], rewrite: { new: { stripPrefix: '/api' } }, ...spec }])
  edit(config)
  return decide(compileTable(config), configuredWeight, method, url, { host: 'shop.example' }) as Decision
}

function request (method: string, extra: string[] = []): PlanRequest {
  const rawHeaders = ['Host', 'shop.example', 'Accept', '*/*', 'X-Request-Id', 'req-1', ...extra]
  const headers: Record<string, string> = {}
  for (let i = 0; i < rawHeaders.length; i += 2) headers[rawHeaders[i].toLowerCase()] = rawHeaders[i + 1]
  return { method, rawHeaders, headers, socket: { remoteAddress: '10.1.2.3' } }
}

/** The upstream headers of request() with `host`, the client's `extra` headers after Accept, and the stripped `prefix`. */
const upstreamHeaders = (host: string, extra: string[] = [], prefix = ''): string[] => [
  'Accept', '*/*', ...extra, 'host', host, 'x-forwarded-for', '10.1.2.3', 'x-forwarded-host', 'shop.example', 'x-forwarded-proto', 'http',
  ...(prefix === '' ? [] : ['x-forwarded-prefix', prefix]), 'x-request-id', 'req-1'
]

/** How new's answers map back (it strips /api): what the client sent as Host. */
const newAnswers = (d: Decision): Answers => ({ map: d.context?.answers.new as AnswerMap, host: 'shop.example', forwardedHost: '' })

t.test('a bodyless request to legacy: one target, its headers, nothing else', async t => {
  const d = decided({}, 'GET', '/api/orders/7?x=1')
  t.strictSame(plan(d, request('GET'), settings, true), {
    label: 'orders',
    requestId: 'req-1',
    target: { upstream: d.upstream, side: 'legacy', path: '/api/orders/7?x=1', headers: upstreamHeaders('monolith'), answers: null },
    body: 'none',
    maxBodyBytes: 0,
    fallback: null,
    on5xx: false,
    shadow: false,
    peerPrefix: '',
    trace: untraced,
    capture: null,
    fellBack: null
  })
})

t.test('an untrusted peer gets a fresh request id, and the upstream gets that one', async t => {
  const d = decided({}, 'GET', '/api/orders/7')
  const p = plan(d, request('GET'), { ...settings, trust: null }, false)
  t.match(p.requestId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  t.strictSame(p.target.headers.slice(-2), ['x-request-id', p.requestId])
})

t.test('new with a fallback: legacy\'s target has the same headers but Host and prefix, its own path, in an array of its own', async t => {
  const d = decided({ weight: 100, fallback }, 'GET', '/api/orders/7?x=1')
  const p = plan(d, request('GET'), settings, true)
  t.strictSame(p.target, { upstream: d.upstream, side: 'new', path: '/orders/7?x=1', headers: upstreamHeaders('svc', [], '/api'), answers: newAnswers(d) })
  t.strictSame(p.fallback, { upstream: d.context?.legacy, side: 'legacy', path: '/api/orders/7?x=1', headers: upstreamHeaders('monolith'), answers: null })
  t.not(p.fallback?.headers, p.target.headers)
  t.equal(p.on5xx, true)
  t.equal(p.body, 'none')
  t.equal(p.shadow, false)
})

t.test('legacy with preserveHost gets the client\'s Host in its fallback copy', async t => {
  const d = decided({ weight: 100, fallback }, 'GET', '/api/orders/7', c => { c.upstreams.monolith.preserveHost = true })
  const p = plan(d, request('GET'), settings, true)
  t.strictSame(p.target.headers, upstreamHeaders('svc', [], '/api'))
  t.strictSame(p.fallback?.headers, upstreamHeaders('shop.example'))
})

t.test('the body kind: none, held for a fallback\'s replay, or streamed', async t => {
  const withFallback = decided({ weight: 100, fallback }, 'PUT', '/api/orders/7')
  const kind = (method: string, extra: string[], d = withFallback): [string, boolean] => {
    const p = plan(d, request(method, extra), settings, true)
    return [p.body, p.fallback !== null]
  }
  t.strictSame(kind('PUT', []), ['none', true])
  t.strictSame(kind('PUT', ['Content-Length', '0']), ['none', true])
  t.strictSame(kind('PUT', ['Content-Length', '100']), ['held', true])
  t.strictSame(kind('PUT', ['Content-Length', '101']), ['streamed', false], 'too large to hold: never retried')
  t.strictSame(kind('PUT', ['Transfer-Encoding', 'chunked']), ['streamed', false], 'a size unknown in advance: never retried')
  t.strictSame(kind('POST', ['Content-Length', '10']), ['streamed', false], 'a method the fallback does not list')
  t.strictSame(kind('POST', ['Content-Length', '10'], decided({ weight: 100 }, 'POST', '/api/orders/7')), ['streamed', false])
  t.strictSame(kind('POST', ['Content-Length', '10'], decided({ fallback }, 'POST', '/api/orders/7')), ['streamed', false], 'legacy never falls back')
})

t.test('a streamed body keeps the server\'s maxBodyBytes for dispatch to enforce', async t => {
  const p = plan(decided({}, 'POST', '/api/orders'), request('POST', ['Transfer-Encoding', 'chunked']), { ...settings, maxBodyBytes: 4096 }, false)
  t.equal(p.body, 'streamed')
  t.equal(p.maxBodyBytes, 4096)
})

t.test('a shadow may mirror only what legacy serves, in a context with a shadow, when shadows are wired', async t => {
  t.equal(plan(decided({ shadow }, 'GET', '/api/orders/7'), request('GET'), settings, true).shadow, true)
  t.equal(plan(decided({ shadow }, 'GET', '/api/orders/7'), request('GET'), settings, false).shadow, false)
  t.equal(plan(decided({ shadow, weight: 100 }, 'GET', '/api/orders/7'), request('GET'), settings, true).shadow, false)
  t.equal(plan(decided({}, 'GET', '/api/orders/7'), request('GET'), settings, true).shadow, false)
  t.equal(plan(decided({ shadow }, 'GET', '/elsewhere'), request('GET'), settings, true).shadow, false, 'the default upstream')
})

t.test('the client\'s hop-by-hop, internal and underscore headers never reach a target', async t => {
  const d = decided({ weight: 100, fallback }, 'GET', '/api/orders/7')
  const p = plan(d, request('GET', ['Connection', 'x-secret', 'X-Secret', '1', 'X-Strangler-Shadow', '1', 'X_Forwarded_For', '6.6.6.6', 'Cookie', 'a=1; strangler_preview=t']), settings, true)
  t.strictSame(p.target.headers, upstreamHeaders('svc', ['Cookie', 'a=1'], '/api'))
  t.strictSame(p.fallback?.headers, upstreamHeaders('monolith', ['Cookie', 'a=1']))
})

t.test('a trusted peer\'s X-Forwarded-Prefix: new gets it with the prefix it strips, legacy\'s fallback copy gets it alone', async t => {
  const d = decided({ weight: 100, fallback }, 'GET', '/api/orders/7')
  const p = plan(d, request('GET', ['X-Forwarded-Prefix', '/shop']), settings, true)
  t.equal(p.peerPrefix, '/shop')
  t.strictSame(p.target.headers, upstreamHeaders('svc', [], '/shop/api'))
  t.strictSame(p.fallback?.headers, upstreamHeaders('monolith', [], '/shop'))
})
