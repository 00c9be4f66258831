import net from 'node:net'
import t from 'tap'
import { parseConfig } from '../../src/config/index.ts'
import { Strangler, StartError, startStrangler } from '../../src/main.ts'
import { configFile, get, proxy, quietLog, routes, upstream } from '../helpers.ts'

/*
 * Slow and oversized clients. The proxy's limits come from `server`:
 * headersTimeout, requestTimeout (durations), maxHeaderBytes, maxBodyBytes.
 * Timers here only dribble bytes, and each dribble has a budget far above the
 * configured timeout: a connection the proxy has not closed when its client
 * runs out of budget is a failure, whatever the wall clock says.
 */

const LIMITS = '  headersTimeout: 500ms\n  requestTimeout: 1s'
/** Dribble ticks before a slow client gives up: 100 × 100 ms, 20× the headers timeout. */
const BUDGET_TICKS = 100
const TICK_MS = 100

interface SlowClient {
  socket: net.Socket
  received: Buffer[]
  /** Set when the budget ran out and the test closed the socket itself. */
  outlived: boolean
  closed: Promise<void>
}

function openSlow (port: number, first: string): Promise<SlowClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    const client: SlowClient = { socket, received: [], outlived: false, closed: new Promise(r => socket.once('close', () => r())) }
    socket.on('data', (c: Buffer) => client.received.push(c))
    socket.on('error', () => {})
    socket.once('connect', () => {
      socket.write(first)
      resolve(client)
    })
    socket.once('error', reject)
  })
}

/** Writes one byte to each open client per tick until the proxy has closed them all or the budget runs out. */
function dribble (clients: SlowClient[], byte: string): { firstTick: Promise<void>; done: Promise<void> } {
  let ticks = 0
  let onFirst: () => void = () => {}
  const firstTick = new Promise<void>(resolve => { onFirst = resolve })
  const done = new Promise<void>(resolve => {
    const timer = setInterval(() => {
      ticks++
      let open = 0
      for (const c of clients) {
        if (c.socket.destroyed || c.socket.writableEnded) continue
        if (ticks > BUDGET_TICKS) {
          c.outlived = true
          c.socket.destroy()
          continue
        }
        open++
        c.socket.write(byte)
      }
      if (ticks === 1) onFirst()
      if (open === 0) {
        clearInterval(timer)
        resolve()
      }
    }, TICK_MS)
  })
  return { firstTick, done }
}

const statusOf = (c: SlowClient): string => Buffer.concat(c.received).toString('latin1').split('\r\n')[0]

t.test('slowloris: 500 connections sending headers a byte at a time are closed with 408, and a normal client is served meanwhile', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0, server: LIMITS }))
  const clients = await Promise.all(Array.from({ length: 500 }, () => openSlow(p.proxyPort, 'GET /slow HTTP/1.1\r\nHost: shop.example.com\r\nX-Slow: ')))
  const { firstTick, done } = dribble(clients, 'a')
  await firstTick
  const during = await get(`${p.base}/normal`)
  t.equal(during.status, 200, 'a normal client is served while 500 slow ones hold connections')
  await done
  await Promise.all(clients.map(c => c.closed))
  t.equal(clients.filter(c => c.outlived).length, 0, 'the proxy closed every slow connection before its client ran out of budget (20× headersTimeout)')
  const statuses: Record<string, number> = {}
  for (const c of clients) statuses[statusOf(c)] = (statuses[statusOf(c)] ?? 0) + 1
  t.strictSame(statuses, { 'HTTP/1.1 408 Request Timeout': 500 }, 'each slow client was told 408')
  t.equal((await get(`${p.base}/after`)).status, 200, 'and the proxy still serves afterwards')
  t.strictSame(legacy.seen.map(s => s.url), ['/normal', '/after'], 'no slow request reached the upstream')
})

t.test('a body sent a byte at a time is cut by requestTimeout; the upstream never gets the request complete', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0, server: LIMITS }))
  const clients = await Promise.all(Array.from({ length: 50 }, () => openSlow(p.proxyPort, 'POST /slow-body HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 100000\r\n\r\n')))
  const { firstTick, done } = dribble(clients, 'b')
  await firstTick
  t.equal((await get(`${p.base}/normal`)).status, 200, 'a normal client is served meanwhile')
  await done
  await Promise.all(clients.map(c => c.closed))
  t.equal(clients.filter(c => c.outlived).length, 0, 'the proxy closed every slow upload before its client ran out of budget (10× requestTimeout)')
  const statuses: Record<string, number> = {}
  for (const c of clients) statuses[statusOf(c)] = (statuses[statusOf(c)] ?? 0) + 1
  t.strictSame(statuses, { 'HTTP/1.1 408 Request Timeout': 50 }, 'each slow upload was told 408')
  t.strictSame(legacy.seen.map(s => s.url), ['/normal'], 'no slow upload reached the upstream complete')
})

t.test('requestTimeout shorter than the default headersTimeout: the proxy starts with a consistent pair, or the config is refused', async t => {
  // Node refuses headersTimeout > requestTimeout with a RangeError at server
  // creation; the proxy must not surface that as a crash at start.
  const legacy = await upstream(t, 'legacy')
  const file = configFile(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0, server: '  requestTimeout: 1s' }))
  let error: unknown
  let s: Strangler | undefined
  try {
    s = await startStrangler({ configFile: file, watch: false, log: quietLog, env: {} })
  } catch (err) {
    error = err
  }
  if (s !== undefined) t.teardown(() => (s as Strangler).close())
  t.ok(error === undefined || error instanceof StartError, `starts, or refuses with a StartError listing the problem (got ${String(error)})`)

  const both = parseConfig(routes({ legacy: 'http://a', new: 'http://b', weight: 0, server: '  headersTimeout: 2s\n  requestTimeout: 1s' }), 'routes.yaml', { env: {}, unsetVars: 'error' })
  t.equal(both.config, null, 'headersTimeout longer than requestTimeout is a validation error')
  t.ok(both.errors.some(e => e.message.includes('headersTimeout')), `the error names headersTimeout: ${JSON.stringify(both.errors.map(e => e.message))}`)
})

/** Writes one request (which asks to close the connection) on a fresh connection; resolves with all the proxy sent until it closed. */
function rawRequest (port: number, bytes: string | Buffer): Promise<string> {
  return new Promise(resolve => {
    const chunks: Buffer[] = []
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes))
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', () => {})
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')))
  })
}

const statusLine = (response: string): string => response.split('\r\n')[0]

t.test('oversized request heads get 431 and reach no upstream: default 16 KiB, and a configured maxHeaderBytes', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0 }))
  const head = (size: number, path: string): string => `GET ${path} HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\nX-Big: ${'x'.repeat(size)}\r\n\r\n`
  t.equal(statusLine(await rawRequest(p.proxyPort, head(15_000, '/under-default'))), 'HTTP/1.1 200 OK', '15,000 bytes of header: served')
  t.equal(statusLine(await rawRequest(p.proxyPort, head(17_000, '/over-default'))), 'HTTP/1.1 431 Request Header Fields Too Large', '17,000 bytes: 431')
  const many = `GET /many HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n${Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'y'.repeat(40)}\r\n`).join('')}\r\n`
  t.equal(statusLine(await rawRequest(p.proxyPort, many)), 'HTTP/1.1 431 Request Header Fields Too Large', '400 headers of 50 bytes: 431')

  const small = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0, server: '  maxHeaderBytes: 2048' }))
  t.equal(statusLine(await rawRequest(small.proxyPort, head(1500, '/under-configured'))), 'HTTP/1.1 200 OK', 'maxHeaderBytes 2048: 1,500 bytes served')
  t.equal(statusLine(await rawRequest(small.proxyPort, head(3000, '/over-configured'))), 'HTTP/1.1 431 Request Header Fields Too Large', 'maxHeaderBytes 2048: 3,000 bytes get 431')
  t.strictSame(legacy.seen.map(s => s.url), ['/under-default', '/under-configured'], 'no oversized request reached the upstream')
})

t.test('bodies over maxBodyBytes get 413: declared by Content-Length, or found mid-stream in a chunked body', async t => {
  const legacy = await upstream(t, 'legacy')
  const started: string[] = []
  legacy.server.prependListener('request', req => { started.push(req.url as string) })
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0, server: '  maxBodyBytes: 1000' }))
  const post = (path: string, body: string): string => `POST ${path} HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n${body}`
  const chunked = (path: string, chunks: number, size: number): string =>
    `POST ${path} HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n${`${size.toString(16)}\r\n${'c'.repeat(size)}\r\n`.repeat(chunks)}0\r\n\r\n`

  t.equal(statusLine(await rawRequest(p.proxyPort, post('/at-limit', 'a'.repeat(1000)))), 'HTTP/1.1 200 OK', 'Content-Length 1000: served')
  const declared = await rawRequest(p.proxyPort, post('/declared-over', 'a'.repeat(1001)))
  t.equal(statusLine(declared), 'HTTP/1.1 413 Payload Too Large', 'Content-Length 1001: 413')
  t.match(declared, /\r\n\r\n\{"statusCode":413,"status":413,"code":"STRANGLER_BODY_TOO_LARGE"/, 'with the JSON error body')
  t.notOk(started.includes('/declared-over'), 'a body declared too large never reaches the upstream, not even its headers')

  t.equal(statusLine(await rawRequest(p.proxyPort, chunked('/chunked-at-limit', 10, 100))), 'HTTP/1.1 200 OK', 'chunked, 1000 bytes: served')
  const streamed = await rawRequest(p.proxyPort, chunked('/chunked-over', 15, 100))
  t.equal(statusLine(streamed), 'HTTP/1.1 413 Payload Too Large', 'chunked, 1500 bytes: 413')
  // The upstream may have seen the request start (its headers go out before
  // the body is read), but never its end: it cannot act on a cut body.
  t.ok(started.filter(u => u === '/chunked-over').length <= 1, 'the upstream saw at most the start of the over-limit chunked request')
  t.strictSame(legacy.seen.map(s => `${s.url} ${s.body.length}`), ['/at-limit 1000', '/chunked-at-limit 1000'], 'and never a complete over-limit request')
})
