import net from 'node:net'
import t, { type Test } from 'tap'
import { deadPort, get, proxy, routes, upstream } from '../helpers.ts'
import { BODY_502, BODY_504, clientOutcome, framingOf, rawRequest, rawUpstream, upstreamErrors } from '../faults.ts'

// Every test routes /api/orders (context "orders", side "new", weight 100) to
// the misbehaving upstream and everything else to a healthy "legacy" one.

async function healthy (t: Test): Promise<string> {
  return (await upstream(t, 'legacy')).url
}

t.test('an upstream that refuses: 502 with the generic body, counted as refused, and the proxy keeps serving', async t => {
  const p = await proxy(t, routes({ legacy: await healthy(t), new: `http://127.0.0.1:${await deadPort()}`, weight: 100 }))
  for (let i = 0; i < 3; i++) {
    const r = await get(`${p.base}/api/orders/${i}`)
    t.equal(r.status, 502)
    t.equal(r.headers['content-type'], 'application/json')
    t.equal(r.body, BODY_502)
  }
  t.same(await upstreamErrors(p, 'orders', 'new'), { refused: 3 })
  t.equal((await get(`${p.base}/other`)).status, 200, 'the proxy still serves other routes')
})

t.test('an upstream that resets before the response headers: 502, counted as reset, sent once', async t => {
  const variants: Record<string, (s: net.Socket) => void> = {
    'RST after the request head': s => s.resetAndDestroy(),
    'FIN after the request head': s => s.end(),
    'part of a status line, then RST': s => s.write('HTTP/1.1 20', () => s.resetAndDestroy())
  }
  for (const [name, misbehave] of Object.entries(variants)) {
    await t.test(name, async t => {
      const bad = await rawUpstream(t, misbehave)
      const p = await proxy(t, routes({ legacy: await healthy(t), new: bad.url, weight: 100 }))
      const r = await get(`${p.base}/api/orders/1`)
      t.equal(r.status, 502)
      t.equal(r.body, BODY_502)
      t.same(await upstreamErrors(p, 'orders', 'new'), { reset: 1 })
      t.equal(bad.requests, 1, 'the upstream saw the request exactly once')
      t.equal(bad.connections, 1)
      t.equal((await get(`${p.base}/other`)).status, 200)
    })
  }

  await t.test('accepted, then closed before the request arrives', async t => {
    const bad = await rawUpstream(t, () => {}, s => { s.destroy(); return false })
    const p = await proxy(t, routes({ legacy: await healthy(t), new: bad.url, weight: 100 }))
    const r = await get(`${p.base}/api/orders/1`)
    t.equal(r.status, 502)
    t.equal(r.body, BODY_502)
    t.same(await upstreamErrors(p, 'orders', 'new'), { reset: 1 })
    t.equal(bad.connections, 1, 'no second connection: nothing is retried')
  })
})

t.test('a failure after the response headers aborts the client connection: a short body never looks complete', async t => {
  // `head`: whether any of the response reached the client before the failure.
  // The proxy flushes the status line with the first body bytes, so an upstream
  // that fails before sending any body leaves the client with a bare reset.
  const variants: Record<string, { head: boolean; misbehave: (s: net.Socket) => void }> = {
    'Content-Length 1000, 15 bytes, RST': { head: true, misbehave: s => s.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nonly part of it', () => s.resetAndDestroy()) },
    'Content-Length 1000, 15 bytes, FIN': { head: true, misbehave: s => s.end('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nonly part of it') },
    'chunked, one chunk, FIN before the last chunk': { head: true, misbehave: s => s.end('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nf\r\nonly part of it\r\n') },
    'chunked, half a chunk, RST': { head: true, misbehave: s => s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3e8\r\nonly part of it', () => s.resetAndDestroy()) },
    'chunked, one chunk, then a malformed chunk size': { head: true, misbehave: s => s.end('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nf\r\nonly part of it\r\nzz\r\n') },
    'Content-Length 1000, no body, FIN': { head: false, misbehave: s => s.end('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n') },
    'chunked, a malformed chunk size before any body': { head: false, misbehave: s => s.end('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n') }
  }
  for (const [name, { head, misbehave }] of Object.entries(variants)) {
    await t.test(name, async t => {
      const bad = await rawUpstream(t, misbehave)
      const p = await proxy(t, routes({ legacy: await healthy(t), new: bad.url, weight: 100 }))

      const seen = await clientOutcome(`${p.base}/api/orders/1`)
      t.not(seen.outcome, 'complete', `http.get observes ${seen.outcome}, never a complete response`)
      t.equal(seen.status, head ? 200 : 0, head ? 'the status line had been sent' : 'nothing had been sent')

      const raw = await rawRequest(p.proxyPort, 'GET /api/orders/2 HTTP/1.1\r\nhost: shop\r\n\r\n')
      if (head) {
        const f = framingOf(raw.bytes)
        t.equal(f.status, 200)
        t.not(f.framing, 'close-delimited', 'the body is framed, so a client can tell it is short')
        t.equal(f.complete, false, `raw client: ${f.bodyBytes} body bytes (${f.framing}), connection ended by ${raw.ended}`)
      } else {
        t.equal(raw.bytes.length, 0, `raw client: connection ended by ${raw.ended} with no bytes`)
      }

      const errors = await upstreamErrors(p, 'orders', 'new')
      t.equal(Object.values(errors).reduce((a, b) => a + b, 0), 2, `both failures counted: ${JSON.stringify(errors)}`)
      t.equal(bad.requests, 2, 'each request reached the upstream once')
      t.equal((await get(`${p.base}/other`)).status, 200)
    })
  }

  await t.test('a body that stalls past bodyTimeout aborts the client connection too', async t => {
    const bad = await rawUpstream(t, s => s.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nfirst bytes'))
    const p = await proxy(t, routes({ legacy: await healthy(t), new: bad.url, weight: 100, upstreamExtra: '    bodyTimeout: 200ms' }))
    const seen = await clientOutcome(`${p.base}/api/orders/1`)
    t.equal(seen.status, 200)
    t.equal(seen.bytes, 'first bytes'.length)
    t.not(seen.outcome, 'complete')
    t.same(await upstreamErrors(p, 'orders', 'new'), { timeout: 1 })
  })
})

t.test('a malformed response is a protocol error: 502 with the generic body, sent once', async t => {
  const responses: Record<string, string> = {
    'status with a letter (999x)': 'HTTP/1.1 999x Odd\r\ncontent-length: 2\r\n\r\nok',
    'status with two digits': 'HTTP/1.1 99 Low\r\ncontent-length: 2\r\n\r\nok',
    'status with four digits': 'HTTP/1.1 2000 High\r\ncontent-length: 2\r\n\r\nok',
    'not HTTP at all': 'SSH-2.0-OpenSSH_9.6\r\n\r\n',
    'duplicate Content-Length, different values': 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok!',
    'one Content-Length with two values': 'HTTP/1.1 200 OK\r\ncontent-length: 2, 3\r\n\r\nok!',
    'Content-Length and Transfer-Encoding': 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    'a header without a colon': 'HTTP/1.1 200 OK\r\nno colon here\r\ncontent-length: 2\r\n\r\nok',
    'a NUL in a header value': 'HTTP/1.1 200 OK\r\nx-bad: a\u0000b\r\ncontent-length: 2\r\n\r\nok'
  }
  for (const [name, response] of Object.entries(responses)) {
    await t.test(name, async t => {
      const bad = await rawUpstream(t, s => s.end(response))
      const p = await proxy(t, routes({ legacy: await healthy(t), new: bad.url, weight: 100 }))
      const r = await get(`${p.base}/api/orders/1`)
      t.equal(r.status, 502)
      t.equal(r.body, BODY_502)
      t.same(await upstreamErrors(p, 'orders', 'new'), { protocol: 1 })
      t.equal(bad.requests, 1, 'sent once')
      t.equal((await get(`${p.base}/other`)).status, 200)
    })
  }
})

t.test('an upstream that hangs: 504 after its timeout, while other contexts keep answering', async t => {
  const hang = await rawUpstream(t, () => {})
  const catalog = '  catalog:\n    match:\n      paths: [/api/catalog]\n    legacy: monolith\n    new: monolith\n    weight: 0'
  const p = await proxy(t, routes({ legacy: await healthy(t), new: hang.url, weight: 100, upstreamExtra: '    timeout: 200ms', extra: catalog }))
  const events: string[] = []
  const arrived = hang.nextRequest()
  const started = performance.now()
  const hung = get(`${p.base}/api/orders/1`).then(r => {
    events.push(`hung ${r.status}`)
    return { ...r, ms: performance.now() - started }
  })
  await arrived
  // 20 requests to the catalog context and to the default, 4 at a time, all while the hung one waits
  for (let batch = 0; batch < 5; batch++) {
    const rs = await Promise.all(Array.from({ length: 4 }, (_, i) => get(`${p.base}${i % 2 === 0 ? '/api/catalog' : '/other'}/${batch * 4 + i}`)))
    for (const r of rs) events.push(`other ${r.status}`)
  }
  const r = await hung
  t.same(events, [...Array.from({ length: 20 }, () => 'other 200'), 'hung 504'], 'every other request was answered before the hung one timed out')
  t.equal(r.body, BODY_504)
  // undici checks headersTimeout on a coarse clock (ticks of about 500 ms), so the
  // 504 comes between 200 ms and about 1.2 s: the ceiling only proves the
  // configured timeout, not the 30 s default, was used.
  t.ok(r.ms >= 199 && r.ms < 3000, `504 after ${Math.round(r.ms)} ms, not before the 200 ms timeout`)
  t.same(await upstreamErrors(p, 'orders', 'new'), { timeout: 1 })
  t.equal(hang.requests, 1, 'a timed-out request is not sent again')
})

t.test('nothing is retried', async t => {
  await t.test('a 503 to a GET is passed through, and the upstream sees exactly one request', async t => {
    const busy = await upstream(t, 'busy', (_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' })
      res.end('busy')
    })
    const p = await proxy(t, routes({ legacy: await healthy(t), new: busy.url, weight: 100 }))
    const r = await get(`${p.base}/api/orders/1`)
    t.equal(r.status, 503)
    t.equal(r.body, 'busy')
    t.equal(r.headers['retry-after'], '1')
    t.equal(busy.seen.length, 1)
    t.same(await upstreamErrors(p, 'orders', 'new'), {}, 'an answered 503 is not an upstream error')
  })

  for (const method of ['POST', 'PUT', 'GET']) {
    await t.test(`a ${method} with a body to an upstream that resets: 502, and the upstream sees exactly one request`, async t => {
      const bad = await rawUpstream(t, s => s.resetAndDestroy())
      const p = await proxy(t, routes({ legacy: await healthy(t), new: bad.url, weight: 100 }))
      const r = await get(`${p.base}/api/orders/1`, { method, body: 'x'.repeat(10) })
      t.equal(r.status, 502)
      t.equal(r.body, BODY_502)
      t.equal(bad.requests, 1)
      t.equal(bad.connections, 1)
    })
  }

  await t.test('a pooled connection the upstream drops after the next request head: 502, not a second attempt', async t => {
    // the first request is answered with keep-alive; the second kills the connection
    const flaky = await rawUpstream(t, (s, _head, nth) => {
      if (nth === 0) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=60\r\n\r\nok')
      else s.resetAndDestroy()
    })
    const p = await proxy(t, routes({ legacy: await healthy(t), new: flaky.url, weight: 100 }))
    t.equal((await get(`${p.base}/api/orders/1`)).status, 200)
    const r = await get(`${p.base}/api/orders/2`)
    t.equal(r.status, 502)
    t.equal(flaky.connections, 1, 'the second request went out on the pooled connection')
    t.equal(flaky.requests, 2, 'and was not sent again on a new one')
  })
})
