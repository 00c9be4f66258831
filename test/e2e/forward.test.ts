import { createHash } from 'node:crypto'
import http from 'node:http'
import t from 'tap'
import { deadPort, get, proxy, routes, upstream } from '../helpers.ts'

t.test('stripPrefix: the new side receives the path it expects, with the query', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 100, extra: '    rewrite:\n      new: { stripPrefix: /api }' }))
  const r = await get(`${p.base}/api/orders/7?expand=items&x=%20`)
  t.same(JSON.parse(r.body), { name: 'new', method: 'GET', url: '/orders/7?expand=items&x=%20' })
  t.equal((await get(`${p.base}/api/orders`)).body, JSON.stringify({ name: 'new', method: 'GET', url: '/orders' }))
})

t.test('methods, bodies and status codes pass through; a large body is streamed both ways', async t => {
  const echo = await upstream(t, 'echo', (req, res) => {
    // The recording upstream has read the body already: answer with its digest.
    res.writeHead(201, { 'x-method': req.method })
    res.end()
  })
  const hasher = await upstream(t, 'hasher')
  hasher.server.removeAllListeners('request')
  hasher.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const hash = createHash('sha256')
    let length = 0
    req.on('data', (c: Buffer) => { hash.update(c); length += c.length })
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      // A chunked response larger than any single buffer.
      for (let i = 0; i < 64; i++) res.write(Buffer.alloc(64 * 1024, 97 + (i % 26)))
      res.end(`\n${length} ${hash.digest('hex')}`)
    })
  })
  const p = await proxy(t, routes({ legacy: echo.url, new: hasher.url, weight: 0 }))
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'PURGE']) {
    const r = await get(`${p.base}/x`, { method, body: `payload for ${method}` })
    t.equal(r.status, 201, method)
    t.equal(r.headers['x-method'], method)
  }
  t.same(echo.seen.map(s => [s.method, s.body]), ['POST', 'PUT', 'PATCH', 'DELETE', 'PURGE'].map(m => [m, `payload for ${m}`]))

  const p2 = await proxy(t, routes({ legacy: hasher.url, new: hasher.url, weight: 0 }))
  const big = Buffer.alloc(8 * 1024 * 1024, 7)
  const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(`${p2.base}/upload`, { method: 'POST', agent: false }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode as number, body: Buffer.concat(chunks).toString() }))
    })
    req.on('error', reject)
    // chunked upload, written in pieces
    for (let i = 0; i < big.length; i += 1 << 20) req.write(big.subarray(i, i + (1 << 20)))
    req.end()
  })
  t.equal(r.status, 200)
  t.equal(r.body.length, 64 * 64 * 1024 + 1 + `${big.length} `.length + 64)
  t.ok(r.body.endsWith(`\n${big.length} ${createHash('sha256').update(big).digest('hex')}`), 'upstream saw every byte of the upload')
})

t.test('502 with a generic body when the upstream refuses; no address leaks', async t => {
  const legacy = await upstream(t, 'legacy')
  const port = await deadPort()
  const p = await proxy(t, routes({ legacy: legacy.url, new: `http://127.0.0.1:${port}`, weight: 100 }))
  const r = await get(`${p.base}/api/orders`)
  t.equal(r.status, 502)
  t.strictSame(JSON.parse(r.body), { statusCode: 502, status: 502, code: 'STRANGLER_UPSTREAM_UNAVAILABLE', message: 'The service behind this proxy did not answer.' })
  t.notMatch(r.body, String(port))
  t.notMatch(r.body, '127.0.0.1')
  const post = await get(`${p.base}/api/orders`, { method: 'POST', body: 'x'.repeat(100_000) })
  t.equal(post.status, 502, 'a request with a body gets 502 too, not a reset')
})

t.test('504 when the upstream does not answer in time', async t => {
  const legacy = await upstream(t, 'legacy')
  const hang = await upstream(t, 'hang', () => {})
  const p = await proxy(t, routes({ legacy: legacy.url, new: hang.url, weight: 100, upstreamExtra: '' }).replace(`url: ${hang.url}`, `url: ${hang.url}\n    timeout: 150ms`))
  const r = await get(`${p.base}/api/orders`)
  t.equal(r.status, 504)
  t.equal(JSON.parse(r.body).code, 'STRANGLER_UPSTREAM_TIMEOUT')
  t.equal((await get(`${p.base}/other`)).status, 200, 'other routes keep answering')
})

t.test('a reset after headers aborts the client connection: a short body never looks complete', async t => {
  const legacy = await upstream(t, 'legacy', (_req, res) => {
    res.writeHead(200, { 'content-length': '1000' })
    res.write('only part of it')
    setImmediate(() => res.socket?.destroy())
  })
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0 }))
  const outcome = await new Promise<string>(resolve => {
    http.get(`${p.base}/x`, { agent: false }, res => {
      res.on('data', () => {})
      res.on('end', () => resolve('complete'))
      res.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
      res.on('aborted', () => resolve('aborted'))
    }).on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
  })
  t.not(outcome, 'complete')
})

t.test('hop-by-hop headers are removed both ways; X-Forwarded-* replaced from an untrusted peer', async t => {
  const legacy = await upstream(t, 'legacy', (_req, res) => {
    res.writeHead(200, { connection: 'keep-alive, x-secret', 'keep-alive': 'timeout=99', 'x-secret': 'hop', 'x-kept': 'end-to-end' })
    res.end('ok')
  })
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0 }))
  const r = await get(`${p.base}/x`, {
    headers: { connection: 'keep-alive, x-drop-me, x-forwarded-for', 'x-drop-me': '1', 'keep-alive': '300', 'proxy-authorization': 'Basic x', te: 'trailers', 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil', 'x-forwarded-proto': 'https', forwarded: 'for=6.6.6.6', 'x-real-ip': '6.6.6.6', host: 'shop.example.com' }
  })
  t.equal(r.status, 200)
  t.equal(r.headers['x-kept'], 'end-to-end')
  t.equal(r.headers['x-secret'], undefined)
  t.not(r.headers['keep-alive'], 'timeout=99', "the upstream's keep-alive is not passed on")
  const seen = legacy.seen[0].headers
  for (const h of ['x-drop-me', 'keep-alive', 'proxy-authorization', 'te', 'forwarded', 'x-real-ip']) t.equal(seen[h], undefined, `${h} not forwarded`)
  t.equal(seen['x-forwarded-for'], '127.0.0.1')
  t.equal(seen['x-forwarded-host'], 'shop.example.com')
  t.equal(seen['x-forwarded-proto'], 'http')
  t.equal(seen.host, `127.0.0.1:${legacy.port}`, 'the upstream gets its own Host')
})

t.test('from a trusted peer the forwarding chain is kept and the peer appended; preserveHost sends the client Host', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0, server: '  trustProxy: [127.0.0.0/8]' }).replace(`url: ${legacy.url}\n  orders-svc`, `url: ${legacy.url}\n    preserveHost: true\n  orders-svc`))
  await get(`${p.base}/x`, { headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-host': 'shop.example.com', 'x-forwarded-proto': 'https', host: 'internal-lb' } })
  const seen = legacy.seen[0].headers
  t.equal(seen['x-forwarded-for'], '203.0.113.9, 127.0.0.1')
  t.equal(seen['x-forwarded-host'], 'shop.example.com')
  t.equal(seen['x-forwarded-proto'], 'https')
  t.equal(seen.host, 'internal-lb')
})

t.test('non-canonical paths get 400 and never reach an upstream', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0 }))
  for (const bad of ['/api/../admin', '/api/%2e%2e/admin', '/a%2Fb', '/a%5Cb', '/a%00', '/a%zz', '/api/..;/admin']) {
    const r = await get(p.base, { path: bad })
    t.equal(r.status, 400, bad)
    t.equal(JSON.parse(r.body).code, 'STRANGLER_BAD_PATH')
  }
  t.equal(legacy.seen.length, 0)
  await get(p.base, { path: '/%61pi/orders/%E2%9C%93%20x' })
  t.equal(legacy.seen[0].url, '/api/orders/%E2%9C%93%20x', 'unreserved escapes decoded, others kept')
})

t.test('limits: a head over maxHeaderBytes gets 431, a body over maxBodyBytes gets 413 and never reaches the upstream whole', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0, server: '  maxHeaderBytes: 2048\n  maxBodyBytes: 1000' }))
  const big = await get(p.base, { path: '/x', headers: { 'x-big': 'a'.repeat(4000) } }).catch((err: Error) => err)
  t.equal((big as { status?: number }).status, 431)
  const declared = await get(`${p.base}/x`, { method: 'POST', body: 'b'.repeat(1001) })
  t.equal(declared.status, 413)
  t.equal(JSON.parse(declared.body).code, 'STRANGLER_BODY_TOO_LARGE')
  const chunked = await new Promise<number>((resolve, reject) => {
    const req = http.request(`${p.base}/x`, { method: 'POST', agent: false }, res => { res.resume(); resolve(res.statusCode as number) })
    req.on('error', reject)
    req.write('c'.repeat(600))
    req.end('c'.repeat(600))
  })
  t.equal(chunked, 413)
  const ok = await get(`${p.base}/x`, { method: 'POST', body: 'd'.repeat(1000) })
  t.equal(ok.status, 200)
  t.same(legacy.seen.map(s => s.body.length), [1000], 'only the request within the limit arrived whole')
})
