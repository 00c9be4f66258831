import t from 'tap'
import { answerMap, answersFor, clientPath, mapLocation, mapSetCookie, type AnswerMap, type Answers } from '../../src/routing/answers.ts'
import { forwardPath, strippedPrefix } from '../../src/routing/rewrite.ts'
import { compileTable } from '../../src/routing/table.ts'
import { clientResponseHeaders, upstreamRequestHeaders } from '../../src/proxy/headers.ts'
import type { Rewrite, Upstream } from '../../src/types.ts'
import { configOf } from '../fixtures/config.ts'

const svc = (url: { origin?: string; host?: string; basePath?: string } = {}): Upstream => ({
  name: 'svc',
  origin: url.origin ?? 'http://orders.internal:3000',
  basePath: url.basePath ?? '',
  host: url.host ?? 'orders.internal:3000',
  timeoutMs: 30000,
  bodyTimeoutMs: 30000,
  maxConnections: 64,
  queueTimeoutMs: 10000,
  preserveHost: false
})

const mapOf = (rewrite: Rewrite | undefined, upstream = svc()): AnswerMap => {
  const map = answerMap(upstream, rewrite)
  if (map === null) throw new Error('no map')
  return map
}
const of = (rewrite: Rewrite | undefined, host = 'shop.example.com', forwarded?: string): Answers =>
  answersFor(mapOf(rewrite), host, forwarded) as Answers

t.test('a side whose upstream sees the client\'s paths has no map', async t => {
  t.equal(answerMap(svc(), undefined), null)
  t.equal(answerMap(svc(), {}), null)
  t.equal(answerMap(svc(), { stripPrefix: '/orders', addPrefix: '/orders' }), null, 'stripped and added back')
  t.equal(answersFor(null, 'shop.example.com', undefined), null)
})

t.test('the map is the inverse of forwardPath: upstream prefix (base path + addPrefix) to stripPrefix', async t => {
  t.same(mapOf({ stripPrefix: '/api' }), { upstreamPrefix: '', clientPrefix: '/api', upstreamHosts: ['orders.internal:3000'] })
  t.same(mapOf({ stripPrefix: '/api/orders', addPrefix: '/orders' }), { upstreamPrefix: '/orders', clientPrefix: '/api/orders', upstreamHosts: ['orders.internal:3000'] })
  t.same(mapOf({ addPrefix: '/v2' }, svc({ basePath: '/app' })), { upstreamPrefix: '/app/v2', clientPrefix: '', upstreamHosts: ['orders.internal:3000'] })
  t.same(mapOf(undefined, svc({ basePath: '/app' })), { upstreamPrefix: '/app', clientPrefix: '', upstreamHosts: ['orders.internal:3000'] })
  // Every path forwardPath produces comes back as the client sent it.
  const cases: Array<[Rewrite, string, string]> = [
    [{ stripPrefix: '/api/orders', addPrefix: '/orders' }, '/api/orders/7', ''],
    [{ stripPrefix: '/api/orders', addPrefix: '/orders' }, '/api/orders/', '?x=1'],
    [{ stripPrefix: '/api' }, '/api/orders/7', '?x=1'],
    [{ addPrefix: '/v2' }, '/orders/7', ''],
    [{ stripPrefix: '/api', addPrefix: '/api/v2' }, '/api/orders/7', '']
  ]
  for (const [rewrite, path, query] of cases) {
    t.equal(clientPath(forwardPath(svc(), rewrite, path, query), mapOf(rewrite)), path + query, `${JSON.stringify(rewrite)} ${path}${query}`)
  }
  t.equal(forwardPath(svc(), { stripPrefix: '/api/orders', addPrefix: '/orders' }, '/api/orders', ''), '/orders/', 'the bare prefix is forwarded as the prefix with a /')
  t.equal(clientPath('/orders/', mapOf({ stripPrefix: '/api/orders', addPrefix: '/orders' })), '/api/orders/', 'and comes back with it')
})

t.test('the upstream\'s own authorities: its host, with and without its default port, any case', async t => {
  t.same(mapOf({ stripPrefix: '/api' }, svc({ origin: 'http://orders.internal:80', host: 'Orders.Internal:80' })).upstreamHosts, ['orders.internal', 'orders.internal:80'])
  t.same(mapOf({ stripPrefix: '/api' }, svc({ origin: 'https://orders.internal', host: 'orders.internal' })).upstreamHosts, ['orders.internal', 'orders.internal:443'])
  t.same(mapOf({ stripPrefix: '/api' }, svc({ origin: 'http://[::1]:3000', host: '[::1]:3000' })).upstreamHosts, ['[::1]:3000'])
})

t.test('paths: under the upstream prefix on a segment boundary, query and fragment kept', async t => {
  const m = mapOf({ stripPrefix: '/api/orders', addPrefix: '/orders' })
  t.equal(clientPath('/orders/7', m), '/api/orders/7')
  t.equal(clientPath('/orders', m), '/api/orders')
  t.equal(clientPath('/orders/', m), '/api/orders/')
  t.equal(clientPath('/orders?page=2#top', m), '/api/orders?page=2#top')
  t.equal(clientPath('/orders#top', m), '/api/orders#top')
  t.equal(clientPath('/orders;v=1', m), '/api/orders;v=1')
  t.equal(clientPath('/ordersx', m), '/ordersx', 'not a segment boundary')
  t.equal(clientPath('/login', m), '/login', 'outside the prefix: left, as nginx does')
  t.equal(clientPath('/Orders/7', m), '/Orders/7', 'paths are case-sensitive')

  const strip = mapOf({ stripPrefix: '/api' })
  t.equal(clientPath('/orders/7', strip), '/api/orders/7', 'no upstream prefix: every path is under it')
  t.equal(clientPath('/', strip), '/api/')
  t.equal(clientPath('/api/orders/7', strip), '/api/orders/7', 'already under the client prefix: built from X-Forwarded-Prefix, left')
  t.equal(clientPath('/apix', strip), '/api/apix')

  const add = mapOf({ addPrefix: '/v2' })
  t.equal(clientPath('/v2/orders', add), '/orders')
  t.equal(clientPath('/v2', add), '/')
  t.equal(clientPath('/v2?x=1', add), '/?x=1')
  t.equal(clientPath('/v3/orders', add), '/v3/orders')

  const longer = mapOf({ stripPrefix: '/api', addPrefix: '/api/v2' })
  t.equal(clientPath('/api/v2/orders/7', longer), '/api/orders/7', 'the longer prefix decides: the upstream\'s')
  t.equal(clientPath('/api/orders/7', longer), '/api/orders/7')
})

t.test('Location: paths mapped; the upstream\'s URLs lose their origin; the client\'s host kept; others left', async t => {
  const a = of({ stripPrefix: '/api/orders', addPrefix: '/orders' })
  const cases: Array<[string, string]> = [
    ['/orders/7', '/api/orders/7'],
    ['/orders/7?x=1#f', '/api/orders/7?x=1#f'],
    ['http://orders.internal:3000/orders/7?x=1#f', '/api/orders/7?x=1#f'],
    ['HTTP://Orders.Internal:3000/orders/7', '/api/orders/7'],
    ['https://orders.internal:3000/orders/7', '/api/orders/7'],
    ['http://orders.internal:3000', '/'],
    ['http://orders.internal:3000?x=1', '/?x=1'],
    ['http://orders.internal:3000/login', '/login'],
    ['//orders.internal:3000/orders/7', '/api/orders/7'],
    ['http://shop.example.com/orders/7', 'http://shop.example.com/api/orders/7'],
    ['https://SHOP.example.com/orders/7?x', 'https://SHOP.example.com/api/orders/7?x'],
    ['//shop.example.com/orders/7', '//shop.example.com/api/orders/7'],
    ['http://shop.example.com/login', 'http://shop.example.com/login'],
    ['http://other.example/orders/7', 'http://other.example/orders/7'],
    ['http://orders.internal/orders/7', 'http://orders.internal/orders/7'],
    ['http://user@orders.internal:3000/orders/7', 'http://user@orders.internal:3000/orders/7'],
    ['ftp://orders.internal:3000/orders/7', 'ftp://orders.internal:3000/orders/7'],
    ['7', '7'],
    ['../orders/7', '../orders/7'],
    ['?page=2', '?page=2'],
    ['', '']
  ]
  for (const [from, to] of cases) t.equal(mapLocation(from, a), to, from)
  t.equal(mapLocation('http://edge.example/orders/7', of({ stripPrefix: '/api/orders', addPrefix: '/orders' }, 'internal-lb', 'Edge.Example, lb')), 'http://edge.example/api/orders/7', 'a trusted peer\'s X-Forwarded-Host')
  t.equal(mapLocation('http:///orders/7', answersFor(mapOf({ stripPrefix: '/api' }), undefined, undefined) as Answers), 'http:///orders/7', 'no Host: an empty authority is nobody\'s')
})

t.test('Set-Cookie: every Path attribute, any case, mapped; none or a relative one left', async t => {
  const a = of({ stripPrefix: '/api/orders', addPrefix: '/orders' })
  const cases: Array<[string, string]> = [
    ['sid=1; Path=/orders', 'sid=1; Path=/api/orders'],
    ['sid=1; Path=/orders/', 'sid=1; Path=/api/orders/'],
    ['sid=1; HttpOnly; path=/orders/cart; Secure', 'sid=1; HttpOnly; path=/api/orders/cart; Secure'],
    ['sid=1;PATH = /orders ;Max-Age=60', 'sid=1;PATH = /api/orders ;Max-Age=60'],
    ['sid=1; Path=/orders; Path=/orders/x', 'sid=1; Path=/api/orders; Path=/api/orders/x'],
    ['sid=1; Path=/', 'sid=1; Path=/'],
    ['sid=1; Path=/login', 'sid=1; Path=/login'],
    ['sid=1; Path=/ordersx', 'sid=1; Path=/ordersx'],
    ['sid=1; Path=orders', 'sid=1; Path=orders'],
    ['sid=1; Path=', 'sid=1; Path='],
    ['sid=1', 'sid=1'],
    ['sid=1; Domain=orders.internal', 'sid=1; Domain=orders.internal'],
    ['path=/orders; Max-Age=1', 'path=/orders; Max-Age=1'],
    ['a=1; Xpath=/orders', 'a=1; Xpath=/orders']
  ]
  for (const [from, to] of cases) t.equal(mapSetCookie(from, a), to, from)
  const strip = of({ stripPrefix: '/api' })
  t.equal(mapSetCookie('sid=1; Path=/', strip), 'sid=1; Path=/api', 'the upstream\'s root is the bare prefix, which covers /api itself')
  t.equal(mapSetCookie('sid=1; Path=/cart', strip), 'sid=1; Path=/api/cart')
  t.equal(mapSetCookie('sid=1; Path=/api/cart', strip), 'sid=1; Path=/api/cart', 'built from X-Forwarded-Prefix: left')
  t.equal(mapSetCookie('sid=1; Path=/v2', of({ addPrefix: '/v2' })), 'sid=1; Path=/')
})

t.test('the table holds a map per side, and one for the default upstream only when its url has a path', async t => {
  const config = configOf([{ name: 'orders', paths: ['/api/orders'], rewrite: { new: { stripPrefix: '/api' } } }])
  const table = compileTable(config)
  const ctx = table.byName.get('orders')
  t.equal(ctx?.answers.legacy, null)
  t.same(ctx?.answers.new, { upstreamPrefix: '', clientPrefix: '/api', upstreamHosts: ['svc', 'svc:80'] })
  t.equal(table.defaultAnswers, null)
  config.upstreams.monolith = { ...config.upstreams.monolith, basePath: '/legacy' }
  t.same(compileTable(config).defaultAnswers, { upstreamPrefix: '/legacy', clientPrefix: '', upstreamHosts: ['monolith', 'monolith:80'] })
})

t.test('strippedPrefix: what forwardPath removed', async t => {
  t.equal(strippedPrefix(undefined, '/api/orders'), '')
  t.equal(strippedPrefix({ addPrefix: '/v2' }, '/api/orders'), '')
  t.equal(strippedPrefix({ stripPrefix: '/api' }, '/api/orders'), '/api')
  t.equal(strippedPrefix({ stripPrefix: '/api' }, '/api'), '/api')
  t.equal(strippedPrefix({ stripPrefix: '/api' }, '/api;v=1'), '/api')
  t.equal(strippedPrefix({ stripPrefix: '/api' }, '/apix'), '')
  t.equal(strippedPrefix({ stripPrefix: '/api' }, '/other'), '')
})

const REQ = ['Host', 'shop.example.com', 'X-Forwarded-Prefix', '/shop/', 'x-forwarded-prefix', '/eu, /de']
const prefixes = (h: string[]): string[] => {
  const out: string[] = []
  for (let i = 0; i < h.length; i += 2) if (h[i].toLowerCase() === 'x-forwarded-prefix') out.push(`${h[i]}: ${h[i + 1]}`)
  return out
}

t.test('X-Forwarded-Prefix: the stripped prefix, after a trusted peer\'s as one path; an untrusted peer\'s dropped', async t => {
  const headers = (trusted: boolean, prefix: string): string[] => prefixes(upstreamRequestHeaders(REQ, 'up:1', '10.0.0.1', trusted, false, true, 'id', prefix))
  t.same(headers(false, '/api'), ['x-forwarded-prefix: /api'])
  t.same(headers(true, '/api'), ['x-forwarded-prefix: /shop/eu/de/api'])
  t.same(headers(false, ''), [], 'nothing stripped: none')
  t.same(headers(true, ''), ['X-Forwarded-Prefix: /shop/', 'x-forwarded-prefix: /eu, /de'], 'nothing stripped: a trusted peer\'s passes as it was')
  t.same(prefixes(upstreamRequestHeaders(['Host', 'h', 'X-Forwarded-Prefix', ' , a//'], 'up:1', '10.0.0.1', true, false, true, 'id', '/api')), ['x-forwarded-prefix: /a/api'], 'empty entries and trailing slashes dropped')
})

t.test('clientResponseHeaders maps every Location, Content-Location and Set-Cookie, names in any case, only with answers', async t => {
  const raw = ['LOCATION', 'http://orders.internal:3000/orders/7', 'Set-Cookie', 'a=1; Path=/orders', 'set-cookie', 'b=2; Path=/orders/x', 'Content-Location', '/orders/7', 'X-Other', '/orders/7', 'Link', '</orders/7>; rel=next'].map(s => Buffer.from(s, 'latin1'))
  t.same(clientResponseHeaders(raw, of({ stripPrefix: '/api/orders', addPrefix: '/orders' })), [
    'LOCATION', '/api/orders/7', 'Set-Cookie', 'a=1; Path=/api/orders', 'set-cookie', 'b=2; Path=/api/orders/x', 'Content-Location', '/api/orders/7', 'X-Other', '/orders/7', 'Link', '</orders/7>; rel=next'
  ])
  const refresh = (value: string): string => clientResponseHeaders(['Refresh', value], of({ stripPrefix: '/api/orders', addPrefix: '/orders' }))[1]
  t.equal(refresh('5; url=http://orders.internal:3000/orders/7'), '5; url=/api/orders/7', 'Refresh, as nginx\'s proxy_redirect')
  t.equal(refresh('0;URL= /orders/7'), '0;URL= /api/orders/7')
  t.equal(refresh('5'), '5')
  t.equal(refresh("5; url='/orders/7'"), "5; url='/orders/7'", 'a quoted URL is left')
  t.same(clientResponseHeaders(raw), raw.map(b => b.toString('latin1')), 'no answers: as they came')
})
