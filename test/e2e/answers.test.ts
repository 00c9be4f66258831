import { once } from 'node:events'
import net from 'node:net'
import t, { type Test } from 'tap'
import type { Shadows } from '../../src/shadow/shadows.ts'
import { rawRequest } from '../faults.ts'
import { proxy } from '../helpers.ts'
import { scriptedUpstream, type ScriptedUpstream, type UpstreamRequest } from '../raw-upstream.ts'

/*
 * Answers from a side whose paths are rewritten point back through the proxy
 * (README "Answers: Location and Set-Cookie"), and the upstream learns the
 * stripped prefix from X-Forwarded-Prefix: on plain requests, fallbacks,
 * WebSocket upgrades and shadow copies. Byte-logging upstreams on both ends.
 */

/** A redirect built the way frameworks do, from the Host the upstream was sent. */
function redirect (req: UpstreamRequest): string {
  const host = req.headers.find(([n]) => n.toLowerCase() === 'host')?.[1] ?? ''
  return 'HTTP/1.1 302 Found\r\n' +
    `Location: http://${host}/orders/7?x=1#f\r\n` +
    'Content-Location: /orders/7\r\n' +
    'Set-Cookie: sid=1; Path=/orders; HttpOnly\r\n' +
    'SET-COOKIE: pref=2; path=/orders/cart\r\n' +
    'Set-Cookie: other=3; Path=/login\r\n' +
    'Set-Cookie: none=4\r\n' +
    'content-length: 0\r\n\r\n'
}

/** The response head's lines the client received, Date and Connection aside. */
async function head (port: number, request: string): Promise<string[]> {
  const r = await rawRequest(port, request)
  const text = r.bytes.toString('latin1')
  return text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n').filter(l => !/^(date|connection|keep-alive):/i.test(l))
}

const prefixOf = (req: UpstreamRequest): string[] => req.headers.filter(([n]) => n.toLowerCase() === 'x-forwarded-prefix').map(([, v]) => v)

function config (legacy: ScriptedUpstream | string, next: ScriptedUpstream | string, extra: string, server = ''): string {
  const url = (u: ScriptedUpstream | string): string => typeof u === 'string' ? u : u.url
  return `server:
  listen: 127.0.0.1:0
  admin: 127.0.0.1:0
${server}
upstreams:
  monolith: { url: "${url(legacy)}" }
  orders-svc: { url: "${url(next)}" }
default: monolith
contexts:
  orders:
    match: { paths: [/api/orders] }
    legacy: monolith
    new: orders-svc
${extra}
`
}

const MAPPED = [
  'HTTP/1.1 302 Found',
  'Location: /api/orders/7?x=1#f',
  'Content-Location: /api/orders/7',
  'Set-Cookie: sid=1; Path=/api/orders; HttpOnly',
  'SET-COOKIE: pref=2; path=/api/orders/cart',
  'Set-Cookie: other=3; Path=/login',
  'Set-Cookie: none=4',
  'content-length: 0'
]

t.test('a rewritten side\'s Location, Content-Location and every Set-Cookie come back mapped; the upstream gets X-Forwarded-Prefix, never a client\'s', async t => {
  const legacy = await scriptedUpstream(t, redirect)
  const next = await scriptedUpstream(t, redirect)
  const p = await proxy(t, config(legacy, next, '    weight: 100\n    rewrite: { new: { stripPrefix: /api/orders, addPrefix: /orders } }'))
  t.same(await head(p.proxyPort, 'GET /api/orders/9 HTTP/1.1\r\nHost: shop.example.com\r\nX-Forwarded-Prefix: /evil\r\nConnection: close\r\n\r\n'), MAPPED)
  t.equal(next.requests[0].line, 'GET /orders/9 HTTP/1.1')
  t.same(prefixOf(next.requests[0]), ['/api/orders'])
})

t.test('a side without a rewrite: answers and headers as they were', async t => {
  const legacy = await scriptedUpstream(t, redirect)
  const next = await scriptedUpstream(t, redirect)
  const p = await proxy(t, config(legacy, next, '    weight: 0\n    rewrite: { new: { stripPrefix: /api } }'))
  const lines = await head(p.proxyPort, 'GET /api/orders/9 HTTP/1.1\r\nHost: shop.example.com\r\nX-Forwarded-Prefix: /evil\r\nConnection: close\r\n\r\n')
  t.equal(lines[1], `Location: http://127.0.0.1:${legacy.port}/orders/7?x=1#f`)
  t.equal(lines[3], 'Set-Cookie: sid=1; Path=/orders; HttpOnly')
  t.same(prefixOf(legacy.requests[0]), [])
})

t.test('from a trusted peer: its prefix goes first, and its X-Forwarded-Host names the client\'s host', async t => {
  const next = await scriptedUpstream(t, () => 'HTTP/1.1 302 Found\r\nLocation: http://edge.example/orders/7\r\ncontent-length: 0\r\n\r\n')
  const p = await proxy(t, config('http://127.0.0.1:1', next, '    weight: 100\n    rewrite: { new: { stripPrefix: /api } }', '  trustProxy: [127.0.0.1/32]'))
  const lines = await head(p.proxyPort, 'GET /api/orders/9 HTTP/1.1\r\nHost: lb.internal\r\nX-Forwarded-Host: Edge.Example\r\nX-Forwarded-Prefix: /shop/\r\nConnection: close\r\n\r\n')
  t.equal(lines[1], 'Location: http://edge.example/api/orders/7')
  t.same(prefixOf(next.requests[0]), ['/shop/api'])
})

t.test('a fallback answer is mapped with legacy\'s rewrite, not new\'s', async t => {
  const legacy = await scriptedUpstream(t, redirect)
  const p = await proxy(t, config(legacy, 'http://127.0.0.1:1', '    weight: 100\n    fallback: true\n    rewrite: { legacy: { stripPrefix: /api/orders, addPrefix: /orders }, new: { stripPrefix: /api } }'))
  t.same(await head(p.proxyPort, 'GET /api/orders/9 HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n'), MAPPED)
  t.same(prefixOf(legacy.requests[0]), ['/api/orders'])
})

t.test('a WebSocket upgrade carries X-Forwarded-Prefix; a refused one is mapped', async t => {
  const next = await scriptedUpstream(t, req => req.headers.some(([n, v]) => n === 'x-refuse' && v === '1')
    ? redirect(req)
    : 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n')
  const p = await proxy(t, config('http://127.0.0.1:1', next, '    weight: 100\n    rewrite: { new: { stripPrefix: /api/orders, addPrefix: /orders } }'))
  const socket = net.connect(p.proxyPort, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET /api/orders/ws HTTP/1.1\r\nHost: shop.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
  await once(socket, 'data')
  socket.destroy()
  t.same(prefixOf(next.requests[0]), ['/api/orders'])
  const lines = await head(p.proxyPort, 'GET /api/orders/ws HTTP/1.1\r\nHost: shop.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nx-refuse: 1\r\n\r\n')
  t.same(lines, MAPPED)
})

t.test('a shadow copy carries its own side\'s X-Forwarded-Prefix', async t => {
  const legacy = await scriptedUpstream(t, redirect)
  const next = await scriptedUpstream(t, redirect)
  const p = await proxy(t, config(legacy, next, '    weight: 0\n    shadow: { percent: 100, learnNoise: 0 }\n    rewrite: { new: { stripPrefix: /api } }'))
  const done = once(p.local?.shadows as Shadows, 'result')
  await head(p.proxyPort, 'GET /api/orders/9 HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n')
  await done
  t.same(prefixOf(legacy.requests[0]), [])
  t.equal(next.requests[0].line, 'GET /orders/9 HTTP/1.1')
  t.same(prefixOf(next.requests[0]), ['/api'])
})

t.test('the default upstream with a path in its url: its answers are mapped too', async (t: Test) => {
  const legacy = await scriptedUpstream(t, () => 'HTTP/1.1 302 Found\r\nLocation: /legacy/home\r\nSet-Cookie: a=1; Path=/legacy\r\ncontent-length: 0\r\n\r\n')
  const p = await proxy(t, config(`${legacy.url}/legacy`, 'http://127.0.0.1:1', '    weight: 0'))
  const lines = await head(p.proxyPort, 'GET /other HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n')
  t.equal(legacy.requests[0].line, 'GET /legacy/other HTTP/1.1')
  t.same(lines.slice(1, 3), ['Location: /home', 'Set-Cookie: a=1; Path=/'])
})
