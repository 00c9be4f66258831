import http from 'node:http'
import t from 'tap'
import { rawRequest } from '../faults.ts'
import { proxy, recordingLog, routes } from '../helpers.ts'
import { ok, scriptedUpstream } from '../raw-upstream.ts'

/*
 * What the proxy port accepts and forwards, whatever hosts it: every method
 * Node's parser knows, paths of any length, bodies as bytes whatever their
 * Content-Type says, and our own 400 for targets a router could not decode.
 * The upstream is a byte-logging TCP server: what it records is what was sent.
 */

function head (status: Buffer): string {
  return status.toString('latin1').split('\r\n')[0]
}

function bodyOf (bytes: Buffer): string {
  const text = bytes.toString('latin1')
  return text.slice(text.indexOf('\r\n\r\n') + 4)
}

t.test('every method Node parses (but CONNECT) is forwarded as it came', async t => {
  const up = await scriptedUpstream(t, () => ok('seen'))
  const p = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0 }))
  const methods = http.METHODS.filter(m => m !== 'CONNECT')
  t.ok(methods.includes('PURGE') && methods.includes('PROPFIND') && methods.includes('MKACTIVITY') && methods.includes('QUERY'))
  for (const m of methods) {
    const r = await rawRequest(p.proxyPort, `${m} /api/orders/7?x=1 HTTP/1.1\r\nHost: shop\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc`)
    t.equal(head(r.bytes), 'HTTP/1.1 200 OK', m)
    const seen = up.requests.at(-1)
    t.equal(seen?.line, `${m} /api/orders/7?x=1 HTTP/1.1`, `${m} reaches the upstream`)
    t.equal(seen?.body.toString(), 'abc', `${m} body`)
  }
  t.equal(up.requests.length, methods.length)
})

t.test('a 64 KiB path is forwarded whole', async t => {
  const up = await scriptedUpstream(t, () => ok())
  const p = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0, server: '  maxHeaderBytes: 131072' }))
  const path = `/api/orders/${'a'.repeat(65_536)}`
  const r = await rawRequest(p.proxyPort, `GET ${path} HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n`)
  t.equal(head(r.bytes), 'HTTP/1.1 200 OK')
  t.equal(up.requests[0]?.line, `GET ${path} HTTP/1.1`)
})

t.test('bodies reach the upstream as bytes, whatever their Content-Type', async t => {
  const up = await scriptedUpstream(t, () => ok())
  const p = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0 }))
  const cases: Array<[string, string, string]> = [
    ['malformed JSON', 'POST', 'Content-Type: application/json\r\nContent-Length: 9\r\n\r\n{"a": [1,'],
    ['no Content-Type', 'PUT', 'Content-Length: 5\r\n\r\n\x00\x01{\xff}'],
    ['no Content-Type, chunked', 'PATCH', 'Transfer-Encoding: chunked\r\n\r\n3\r\n{"x\r\n0\r\n\r\n'],
    ['an invalid Content-Type', 'POST', 'Content-Type: ;;=/\r\nContent-Length: 4\r\n\r\nbody'],
    ['QUERY without Content-Type', 'QUERY', 'Content-Length: 5\r\n\r\nq=1&2'],
    ['form, urlencoded and broken', 'POST', 'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 6\r\n\r\n%%%=&&'],
    ['text with a charset', 'POST', 'Content-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nhi']
  ]
  const expected = ['{"a": [1,', '\x00\x01{\xff}', '{"x', 'body', 'q=1&2', '%%%=&&', 'hi']
  for (const [i, [name, method, rest]] of cases.entries()) {
    const r = await rawRequest(p.proxyPort, `${method} /api/orders HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n${rest}`)
    t.equal(head(r.bytes), 'HTTP/1.1 200 OK', name)
    t.equal(up.requests.at(-1)?.body.toString('latin1'), expected[i], name)
  }
  t.equal(up.requests.length, cases.length)
})

t.test('targets a router cannot decode get our 400, not a framework error', async t => {
  const up = await scriptedUpstream(t, () => ok())
  const p = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0 }))
  for (const target of ['/a%zz', '/%E0%A4%A', '/api/%', '*', `/${'%zz'.repeat(200)}`]) {
    const r = await rawRequest(p.proxyPort, `OPTIONS ${target} HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n`)
    t.equal(head(r.bytes), 'HTTP/1.1 400 Bad Request', target)
    t.equal(JSON.parse(bodyOf(r.bytes)).code, 'STRANGLER_BAD_PATH', target)
  }
  t.equal(up.requests.length, 0)
})

t.test('the proxy port writes no log line per request', async t => {
  const up = await scriptedUpstream(t, (req) => req.line.startsWith('GET /boom') ? s => s.destroy() : ok())
  const { log, lines } = recordingLog()
  const p = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0 }), { log })
  const before = lines.length
  await rawRequest(p.proxyPort, 'GET /api/orders HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n')
  await rawRequest(p.proxyPort, 'GET /a%zz HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n')
  await rawRequest(p.proxyPort, 'GET /boom HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n')
  t.same(lines.slice(before).map(l => l.msg), [])
})
