import diagnostics from 'node:diagnostics_channel'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { MAX_WAITING } from '../../src/proxy/pipeline.ts'
import { proxy, routes } from '../helpers.ts'

/*
 * Pipelined requests (RFC 9112 §9.3.2): the proxy sends a client connection's
 * requests upstream one after another, each only once the previous response
 * has gone to the client, as nginx does. The upstream here is a raw TCP
 * server that logs, in one sequence, each request it receives and each
 * response it writes.
 */

interface Logged { event: 'request' | 'response'; conn: number; what: string }

interface LoggingUpstream {
  url: string
  log: Logged[]
  connections: number
  /** Most requests the upstream held unanswered at once, over all connections. */
  maxOpen: number
}

/**
 * Answers every request with `<METHOD> <path> <body>`; `/slow` after `slowMs`.
 * Requests are framed by Content-Length (the proxy sends nothing else here).
 */
async function loggingUpstream (t: Test, slowMs: number): Promise<LoggingUpstream> {
  const u: LoggingUpstream = { url: '', log: [], connections: 0, maxOpen: 0 }
  let open = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer(socket => {
    const conn = u.connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buf = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      for (;;) {
        const end = buf.indexOf('\r\n\r\n')
        if (end === -1) return
        const head = buf.subarray(0, end).toString('latin1')
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
        if (buf.length < end + 4 + length) return
        const body = buf.subarray(end + 4, end + 4 + length).toString('latin1')
        buf = buf.subarray(end + 4 + length)
        const [method, path] = head.split(' ')
        const what = `${method} ${path} ${body}`.trimEnd()
        u.log.push({ event: 'request', conn, what })
        u.maxOpen = Math.max(u.maxOpen, ++open)
        const answer = (): void => {
          open--
          u.log.push({ event: 'response', conn, what })
          socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(what)}\r\n\r\n${what}`)
        }
        if (path === '/slow') setTimeout(answer, slowMs)
        else answer()
      }
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  u.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return u
}

/** Writes `bytes` in one write on a fresh connection; resolves with the bodies of the responses read until the proxy closes it. */
function pipeline (port: number, bytes: string): Promise<{ statuses: number[]; bodies: string[] }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes))
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', reject)
    socket.on('close', () => {
      const statuses: number[] = []
      const bodies: string[] = []
      let text = Buffer.concat(chunks).toString('latin1')
      while (text.length > 0) {
        const end = text.indexOf('\r\n\r\n')
        if (end === -1) return reject(new Error(`incomplete response: ${JSON.stringify(text.slice(0, 200))}`))
        const head = text.slice(0, end)
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN)
        statuses.push(Number(head.split(' ')[1]))
        bodies.push(text.slice(end + 4, end + 4 + length))
        text = text.slice(end + 4 + length)
      }
      resolve({ statuses, bodies })
    })
  })
}

const H = 'Host: shop.example.com\r\n'

t.test('three pipelined requests reach the upstream one after another, each after the previous response, and are answered in order', async t => {
  const up = await loggingUpstream(t, 300)
  const p = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0 }))
  const r = await pipeline(p.proxyPort,
    `POST /slow HTTP/1.1\r\n${H}Content-Length: 1\r\n\r\na` +
    `POST /fast HTTP/1.1\r\n${H}Content-Length: 1\r\n\r\nb` +
    `DELETE /fast HTTP/1.1\r\n${H}Connection: close\r\n\r\n`)
  t.same(r.statuses, [200, 200, 200])
  t.same(r.bodies, ['POST /slow a', 'POST /fast b', 'DELETE /fast'])
  t.same(up.log.map(e => `${e.event} ${e.what}`), [
    'request POST /slow a', 'response POST /slow a',
    'request POST /fast b', 'response POST /fast b',
    'request DELETE /fast', 'response DELETE /fast'
  ])
  t.equal(up.maxOpen, 1)
})

t.test('a request that closes the connection in the middle of a pipeline: the ones before it are answered in order, the ones after it never reach the upstream', async t => {
  const up = await loggingUpstream(t, 100)
  const p = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0 }))
  const r = await pipeline(p.proxyPort,
    `GET /slow HTTP/1.1\r\n${H}\r\n` +
    `GET /fast HTTP/1.1\r\n${H}Connection: close\r\n\r\n` +
    `GET /never HTTP/1.1\r\n${H}\r\n`)
  t.same(r.bodies, ['GET /slow', 'GET /fast'])
  t.same(up.log.map(e => `${e.event} ${e.what}`), ['request GET /slow', 'response GET /slow', 'request GET /fast', 'response GET /fast'])
})

t.test('2,000 pipelined GETs on one connection: each reaches the upstream once, one at a time, over one connection, and is answered in order', async t => {
  const up = await loggingUpstream(t, 1)
  const p = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0 }).replace(`url: ${up.url}\n`, `url: ${up.url}\n    maxConnections: 1\n`))
  let bytes = ''
  for (let i = 0; i < 2000; i++) bytes += `GET /${i % 100 === 0 ? 'slow' : 'fast'}?n=${i} HTTP/1.1\r\n${H}${i === 1999 ? 'Connection: close\r\n' : ''}\r\n`
  const r = await pipeline(p.proxyPort, bytes)
  const expected = Array.from({ length: 2000 }, (_, i) => `GET /${i % 100 === 0 ? 'slow' : 'fast'}?n=${i}`)
  t.same(r.bodies, expected)
  t.same(up.log.filter(e => e.event === 'request').map(e => e.what), expected)
  t.equal(up.maxOpen, 1)
  t.equal(up.connections, 1)
})

t.test('a client pipelining faster than the upstream answers: the proxy stops reading its connection instead of holding every request', async t => {
  const up = await loggingUpstream(t, 300)
  const p = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0 }))
  // Requests the proxy's HTTP server has parsed and not yet answered, at most, over the test.
  let outstanding = 0
  let most = 0
  const onStart = ({ server }: { server: unknown }): void => { if (server === p.local?.server) most = Math.max(most, ++outstanding) }
  const onFinish = ({ server }: { server: unknown }): void => { if (server === p.local?.server) outstanding-- }
  diagnostics.subscribe('http.server.request.start', onStart as (m: unknown) => void)
  diagnostics.subscribe('http.server.response.finish', onFinish as (m: unknown) => void)
  t.teardown(() => {
    diagnostics.unsubscribe('http.server.request.start', onStart as (m: unknown) => void)
    diagnostics.unsubscribe('http.server.response.finish', onFinish as (m: unknown) => void)
  })
  // 2,000 requests of 128 bytes (256 KB) behind one the upstream holds for 300 ms.
  const pad = 'x'.repeat(128 - `GET /fast?n=0000 HTTP/1.1\r\n${H}x-pad: \r\n\r\n`.length)
  let bytes = `GET /slow HTTP/1.1\r\n${H}\r\n`
  for (let i = 0; i < 2000; i++) bytes += `GET /fast?n=${String(i).padStart(4, '0')} HTTP/1.1\r\n${H}x-pad: ${pad}\r\n${i === 1999 ? 'Connection: close\r\n' : ''}\r\n`
  const r = await pipeline(p.proxyPort, bytes)
  t.equal(r.bodies.length, 2001)
  t.equal(r.bodies[2000], 'GET /fast?n=1999')
  t.equal(up.maxOpen, 1)
  // MAX_WAITING, plus what one 64 KiB read of the socket holds (512 requests of 128 bytes), plus the one in flight.
  t.ok(most <= MAX_WAITING + 512 + 1, `at most ${MAX_WAITING + 512 + 1} requests held at once, held ${most}`)
})

t.test('garbage after requests waiting in a pipeline: each is answered in order, then 400, then the connection closes', async t => {
  const up = await loggingUpstream(t, 100)
  const p = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0 }))
  const r = await pipeline(p.proxyPort, `GET /slow HTTP/1.1\r\n${H}\r\nGET /fast HTTP/1.1\r\n${H}\r\nNOT HTTP AT ALL\r\n\r\n`)
  t.same(r.statuses, [200, 200, 400])
  t.same(r.bodies, ['GET /slow', 'GET /fast', ''])
  t.same(up.log.map(e => `${e.event} ${e.what}`), ['request GET /slow', 'response GET /slow', 'request GET /fast', 'response GET /fast'])
})
