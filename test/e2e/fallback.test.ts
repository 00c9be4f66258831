import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { pino, type Logger } from 'pino'
import t, { type Test } from 'tap'
import { admin, deadPort, get, proxy, routes, upstream } from '../helpers.ts'

/** An upstream that accepts connections and resets each one as soon as a request arrives. */
async function resetter (t: Test): Promise<{ url: string; hits: () => number }> {
  let hits = 0
  const server = net.createServer(socket => socket.once('data', () => { hits++; socket.resetAndDestroy() }))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits }
}

function withFallback (legacy: string, next: string, fallback: string, upstreamExtra = ''): string {
  return routes({ legacy, new: next, weight: 100, extra: `    fallback: ${fallback}` }).replace(`url: ${next}`, `url: ${next}${upstreamExtra}`)
}

t.test('fallback rescues a GET when new refuses, resets or times out, once, and counts it', async t => {
  const legacy = await upstream(t, 'legacy')
  const dead = await proxy(t, withFallback(legacy.url, `http://127.0.0.1:${await deadPort()}`, 'true'))
  const r = await get(`${dead.base}/api/orders/1?x=1`)
  t.equal(r.status, 200)
  t.same(JSON.parse(r.body), { name: 'legacy', method: 'GET', url: '/api/orders/1?x=1' })
  const reset = await resetter(t)
  const rs = await proxy(t, withFallback(legacy.url, reset.url, 'true'))
  t.equal(JSON.parse((await get(`${rs.base}/api/orders/2`)).body).name, 'legacy')
  t.equal(reset.hits(), 1, 'new was tried once')
  const hang = await upstream(t, 'hang', () => {})
  const slow = await proxy(t, withFallback(legacy.url, hang.url, 'true', '\n    timeout: 100ms'))
  t.equal(JSON.parse((await get(`${slow.base}/api/orders/3`)).body).name, 'legacy')
  const m = (await admin(dead, 'GET', '/metrics')).text
  t.match(m, /^strangler_fallbacks_total\{context="orders",reason="refused"\} 1$/m)
  t.match(m, /^strangler_requests_total\{context="orders",side="legacy",code="2xx"\} 1$/m, 'counted once, by the side that served it')
  t.notMatch(m, /strangler_requests_total\{context="orders",side="new"/)
  t.match((await admin(slow, 'GET', '/metrics')).text, /^strangler_fallbacks_total\{context="orders",reason="timeout"\} 1$/m)
})

t.test('a POST is never replayed by default; a listed method with a small body is, with the same body', async t => {
  const legacy = await upstream(t, 'legacy')
  const reset = await resetter(t)
  const p = await proxy(t, withFallback(legacy.url, reset.url, 'true'))
  const post = await get(`${p.base}/api/orders`, { method: 'POST', body: 'order' })
  t.equal(post.status, 502)
  t.equal(legacy.seen.length, 0, 'legacy never saw the POST')
  const q = await proxy(t, withFallback(legacy.url, reset.url, '{ methods: [PUT], maxBodyBytes: 100 }'))
  const put = await get(`${q.base}/api/orders/9`, { method: 'PUT', body: 'same body' })
  t.equal(put.status, 200)
  t.same(legacy.seen.map(s => [s.method, s.url, s.body]), [['PUT', '/api/orders/9', 'same body']])
  const big = await get(`${q.base}/api/orders/9`, { method: 'PUT', body: 'x'.repeat(101) })
  t.equal(big.status, 502, 'a body over maxBodyBytes is streamed and never retried')
  t.equal(legacy.seen.length, 1)
})

t.test('on5xx: a 5xx from new is replaced by legacy\'s answer; without it, the client gets the 5xx', async t => {
  const legacy = await upstream(t, 'legacy')
  const failing = await upstream(t, 'new', (_req, res) => { res.writeHead(503); res.end('down') })
  const off = await proxy(t, withFallback(legacy.url, failing.url, 'true'))
  t.equal((await get(`${off.base}/api/orders`)).status, 503)
  const on = await proxy(t, withFallback(legacy.url, failing.url, '{ on5xx: true }'))
  const r = await get(`${on.base}/api/orders`)
  t.equal(r.status, 200)
  t.equal(JSON.parse(r.body).name, 'legacy')
  t.match((await admin(on, 'GET', '/metrics')).text, /^strangler_fallbacks_total\{context="orders",reason="5xx"\} 1$/m)
})

/** A logger that keeps its parsed lines and wakes whoever waits for the nth `request` line. */
function accessLog (): { log: Logger; requests: (n: number) => Promise<Array<Record<string, any>>> } {
  const lines: Array<Record<string, any>> = []
  let waiting: { n: number; resolve: () => void } | null = null
  const requests = (): Array<Record<string, any>> => lines.filter(l => l.msg === 'request')
  const log = pino({ level: 'info', base: null, timestamp: false }, {
    write (s: string) {
      lines.push(JSON.parse(s))
      if (waiting !== null && requests().length >= waiting.n) waiting.resolve()
    }
  })
  return {
    log,
    requests: async n => {
      if (requests().length < n) await new Promise<void>(resolve => { waiting = { n, resolve } })
      return requests().map(({ ms, reqId, bytesOut, ...rest }) => {
        if (typeof ms !== 'number' || typeof reqId !== 'string' || typeof bytesOut !== 'number' || bytesOut === 0) throw new Error(`ms: ${ms}, reqId: ${reqId}, bytesOut: ${bytesOut}`)
        return rest
      })
    }
  }
}

t.test('a rescued request is visible: the access log names legacy and the fallback, the metrics count it once on legacy and new\'s failure apart', async t => {
  const legacy = await upstream(t, 'legacy')
  const { log, requests } = accessLog()
  const yaml = withFallback(legacy.url, `http://127.0.0.1:${await deadPort()}`, 'true').replace('admin: 127.0.0.1:0', 'admin: 127.0.0.1:0\n  accessLog: true')
  const p = await proxy(t, yaml, { log })
  for (let i = 0; i < 3; i++) t.equal((await get(`${p.base}/api/orders/${i}`)).status, 200)
  t.equal((await get(`${p.base}/elsewhere`)).status, 200)
  t.strictSame(await requests(4), [
    { level: 30, msg: 'request', client: '127.0.0.1', method: 'GET', path: '/api/orders/0', status: 200, bytesIn: 0, context: 'orders', side: 'legacy', fallback: 'refused', upstream: 'monolith' },
    { level: 30, msg: 'request', client: '127.0.0.1', method: 'GET', path: '/api/orders/1', status: 200, bytesIn: 0, context: 'orders', side: 'legacy', fallback: 'refused', upstream: 'monolith' },
    { level: 30, msg: 'request', client: '127.0.0.1', method: 'GET', path: '/api/orders/2', status: 200, bytesIn: 0, context: 'orders', side: 'legacy', fallback: 'refused', upstream: 'monolith' },
    { level: 30, msg: 'request', client: '127.0.0.1', method: 'GET', path: '/elsewhere', status: 200, bytesIn: 0, context: 'default', side: 'legacy', upstream: 'monolith' }
  ])
  const m = (await admin(p, 'GET', '/metrics')).text
  t.strictSame(m.split('\n').filter(l => /^strangler_(requests|fallbacks|upstream_errors)_total\{/.test(l) && !l.endsWith(' 0')).sort(), [
    'strangler_fallbacks_total{context="orders",reason="refused"} 3',
    'strangler_requests_total{context="default",side="legacy",code="2xx"} 1',
    'strangler_requests_total{context="orders",side="legacy",code="2xx"} 3',
    'strangler_upstream_errors_total{context="orders",side="new",reason="refused"} 3'
  ])

  const failing = await upstream(t, 'new', (_req, res) => { res.writeHead(503); res.end('down') })
  const on5xx = accessLog()
  const q = await proxy(t, withFallback(legacy.url, failing.url, '{ on5xx: true }').replace('admin: 127.0.0.1:0', 'admin: 127.0.0.1:0\n  accessLog: true'), { log: on5xx.log })
  t.equal((await get(`${q.base}/api/orders`)).status, 200)
  t.strictSame(await on5xx.requests(1), [{ level: 30, msg: 'request', client: '127.0.0.1', method: 'GET', path: '/api/orders', status: 200, bytesIn: 0, context: 'orders', side: 'legacy', fallback: '5xx', upstream: 'monolith' }])

  const healthy = await upstream(t, 'new')
  const served = accessLog()
  const r = await proxy(t, withFallback(legacy.url, healthy.url, 'true').replace('admin: 127.0.0.1:0', 'admin: 127.0.0.1:0\n  accessLog: true'), { log: served.log })
  t.equal(JSON.parse((await get(`${r.base}/api/orders`)).body).name, 'new')
  t.strictSame(await served.requests(1), [{ level: 30, msg: 'request', client: '127.0.0.1', method: 'GET', path: '/api/orders', status: 200, bytesIn: 0, context: 'orders', side: 'new', upstream: 'orders-svc' }], 'no fallback field when new answered')
})
