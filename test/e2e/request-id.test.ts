import net from 'node:net'
import t from 'tap'
import { proxy, recordingLog, routes } from '../helpers.ts'
import { ok, scriptedUpstream } from '../raw-upstream.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** Sends raw request bytes on a connection of its own and resolves with every byte the proxy answered, until it closes. */
function exchange (port: number, request: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request))
    socket.on('data', (c: Buffer) => parts.push(c))
    socket.once('error', reject)
    socket.once('close', () => resolve(Buffer.concat(parts)))
  })
}

function headerOf (headers: Array<[string, string]>, name: string): string[] {
  return headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v)
}

t.test('X-Request-Id: generated when absent, a client\'s replaced unless the peer is trusted, forwarded once, logged', async t => {
  const up = await scriptedUpstream(t, () => ok())
  const { log, lines } = recordingLog()
  const p = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0, server: '  accessLog: true' }), { log })
  await exchange(p.proxyPort, 'GET /api/orders HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n')
  await exchange(p.proxyPort, 'GET /api/orders HTTP/1.1\r\nhost: a\r\nx-request-id: chosen-by-client\r\nconnection: close\r\n\r\n')
  const trusted = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0, server: '  accessLog: true\n  trustProxy: [127.0.0.1]' }), { log })
  await exchange(trusted.proxyPort, 'GET /api/orders HTTP/1.1\r\nhost: a\r\nx-request-id: chosen-by-edge\r\nconnection: close\r\n\r\n')
  await exchange(trusted.proxyPort, 'GET /api/orders HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n')
  const ids = up.requests.map(r => headerOf(r.headers, 'x-request-id'))
  t.equal(ids.length, 4)
  t.ok(ids.every(list => list.length === 1), 'exactly one X-Request-Id upstream')
  t.match(ids[0][0], UUID, 'generated when absent')
  t.match(ids[1][0], UUID, 'an untrusted client\'s is replaced')
  t.equal(ids[2][0], 'chosen-by-edge', 'a trusted peer\'s is kept')
  t.match(ids[3][0], UUID, 'generated when a trusted peer sends none')
  t.equal(new Set(ids.map(l => l[0])).size, 4)
  t.strictSame(lines.filter(l => l.msg === 'request').map(l => l.reqId), ids.map(l => l[0]), 'the access log names the id the upstream received')
})

t.test('access log: request id, client, method, path without its query, status, bytes in and out, context, side, upstream', async t => {
  const up = await scriptedUpstream(t, () => ok('{"ok":true}', 'content-type: application/json\r\n'))
  const { log, lines } = recordingLog()
  const p = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0, server: '  accessLog: true' }), { log })
  const answer = await exchange(p.proxyPort, 'POST /api/orders/5?token=s3cret HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello')
  t.match(answer.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n/)
  const [line] = lines.filter(l => l.msg === 'request')
  const { time, ms, pid, hostname, ...rest } = line
  t.ok(typeof time === 'number' && typeof ms === 'number')
  t.strictSame(rest, {
    level: 30,
    msg: 'request',
    reqId: headerOf(up.requests[0].headers, 'x-request-id')[0],
    client: '127.0.0.1',
    method: 'POST',
    path: '/api/orders/5',
    status: 200,
    bytesIn: 5,
    bytesOut: answer.length,
    context: 'orders',
    side: 'legacy',
    upstream: 'monolith'
  })
  t.notMatch(JSON.stringify(lines), /s3cret/, 'the query string is nowhere in the log')

  const withQuery = recordingLog()
  const q = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0, server: '  accessLog: true\n  accessLogQuery: true' }), { log: withQuery.log })
  await exchange(q.proxyPort, 'GET /api/orders/6?page=2 HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n')
  t.equal(withQuery.lines.find(l => l.msg === 'request')?.path, '/api/orders/6?page=2', 'server.accessLogQuery keeps it')
})
