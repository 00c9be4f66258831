import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import { proxy, routes, upstream } from '../helpers.ts'
import { ok, scriptedUpstream } from '../raw-upstream.ts'

async function wsUpstream (t: Test, name: string): Promise<{ url: string; headers: http.IncomingHttpHeaders[] }> {
  const server = http.createServer()
  const wss = new WebSocketServer({ server })
  const headers: http.IncomingHttpHeaders[] = []
  wss.on('connection', (ws, req) => {
    headers.push(req.headers)
    ws.on('message', data => ws.send(`${name}:${req.url}:${String(data)}`))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const c of wss.clients) c.terminate()
    wss.close()
    server.close()
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, headers }
}

t.test('a WebSocket upgrade follows the routing decision and carries the client headers', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await wsUpstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 100, extra: '    rewrite:\n      new: { stripPrefix: /api }' }))
  const ws = new WebSocket(`ws://127.0.0.1:${p.proxyPort}/api/orders/live?x=1`, { headers: { authorization: 'Bearer abc' } })
  await once(ws, 'open')
  ws.send('hello')
  const [data] = await once(ws, 'message')
  t.equal(String(data), 'new:/orders/live?x=1:hello')
  t.equal(next.headers[0].authorization, 'Bearer abc')
  t.equal(next.headers[0]['x-forwarded-for'], '127.0.0.1')
  ws.close()
  await once(ws, 'close')
})

t.test('a WebSocket to a refused upstream gets 502; a bad path gets 400', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: 'http://127.0.0.1:1', weight: 100 }))
  const ws = new WebSocket(`ws://127.0.0.1:${p.proxyPort}/api/orders`)
  const [, res] = await once(ws, 'unexpected-response') as [unknown, http.IncomingMessage]
  t.equal(res.statusCode, 502)
  // A raw socket: WebSocket clients normalise the path before sending it.
  const socket = net.connect(p.proxyPort, '127.0.0.1')
  socket.end('GET /api/%2e%2e/x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  const chunks: Buffer[] = []
  for await (const chunk of socket) chunks.push(chunk as Buffer)
  t.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 400 Bad Request\r\n/)
  t.equal(legacy.seen.length, 0)
})

t.test('an upgrade the upstream refuses is relayed as an answer that closes the connection: nothing the client sends next reaches the upstream unrouted', async t => {
  const up = await scriptedUpstream(t, () => ok('no'))
  const p = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0 }))
  const client = net.connect(p.proxyPort, '127.0.0.1')
  let received = ''
  client.on('data', (c: Buffer) => {
    received += c.toString('latin1')
    // The refusal arrived: the client goes on as if its connection were still HTTP to the proxy.
    if (received.endsWith('\r\n\r\nno')) client.write('GET /admin/secret HTTP/1.1\r\nHost: shop.example.com\r\nX_Forwarded_For: 6.6.6.6\r\n\r\n')
  })
  client.write('GET /api/orders/ws HTTP/1.1\r\nHost: shop.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
  await once(client, 'close')
  t.match(received, /^HTTP\/1\.1 200 OK\r\n/)
  t.match(received, /\r\nconnection: close\r\n/i)
  t.ok(received.endsWith('\r\n\r\nno'), 'the body, then the connection closes')
  t.strictSame(up.requests.map(r => r.line), ['GET /api/orders/ws HTTP/1.1'], 'the upstream saw the upgrade request only')
})
