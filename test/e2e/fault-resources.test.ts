import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import type { Readable, Writable } from 'node:stream'
import v8 from 'node:v8'
import vm from 'node:vm'
import t, { type Test } from 'tap'
import type { DataPlane } from '../../src/proxy/plane.ts'
import { deadPort, get, proxy, routes, upstream } from '../helpers.ts'
import { BODY_502, connectionsOf, rawUpstream, settle, tcpSocketHandles } from '../faults.ts'

// Handle tolerance: none. Every socket these tests open is destroyed by the
// time we check (clients destroy theirs, the proxy must close both of its
// sides), and once the upstream has no connection left the undici pools hold
// nothing either, so the count of TCPSocketWrap handles must come back to
// exactly the baseline. (Idle pooled sockets are unref'd and so invisible to
// getActiveResourcesInfo: the upstream's own connection count covers them.)

function plane (p: { local: DataPlane | null }): DataPlane {
  if (p.local === null) throw new Error('the proxy runs in this process')
  return p.local
}

/** The upstream's side of every connection the proxy opens to it. */
function watchConnections (server: net.Server): { open: Set<net.Socket>; opened: () => number; unused: () => number; allClosed: (boundMs: number) => Promise<boolean> } {
  const open = new Set<net.Socket>()
  const used = new WeakSet<net.Socket>()
  let opened = 0
  let onClose: () => void = () => {}
  server.on('connection', (s: net.Socket) => {
    opened++
    open.add(s)
    s.once('data', () => used.add(s))
    s.on('close', () => {
      open.delete(s)
      onClose()
    })
  })
  return {
    open,
    opened: () => opened,
    unused: () => [...open].filter(s => !used.has(s)).length,
    // event-driven: resolves on the close that empties the set; the timer is only a bound
    allClosed: boundMs => new Promise(resolve => {
      if (open.size === 0) return resolve(true)
      const bound = setTimeout(() => resolve(false), boundMs)
      onClose = () => {
        if (open.size > 0) return
        clearTimeout(bound)
        resolve(true)
      }
    })
  }
}

/** Waits, in loop turns, for the proxy's listener to hold no connection and the TCP handles to be back at `handles`. */
async function proxySocketsAtBaseline (t: Test, proxyServer: net.Server, handles: number): Promise<void> {
  let last = { proxy: -1, handles: -1 }
  const ok = await settle(async () => {
    last = { proxy: await connectionsOf(proxyServer), handles: tcpSocketHandles() }
    return last.proxy === 0 && last.handles === handles
  })
  t.ok(ok, `proxy sockets back at baseline: ${JSON.stringify(last)} (want proxy 0, TCPSocketWrap ${handles})`)
}

/**
 * After a storm of aborted exchanges: nothing is in flight any more (`ended`),
 * the spare connections undici opens for aborted requests (see the single-abort
 * test above) carry nothing and stay few, and every upstream connection closes
 * (within undici's 4 s keep-alive, bounded at 15 s).
 */
async function upstreamSettles (t: Test, conns: ReturnType<typeof watchConnections>, ended: () => boolean): Promise<void> {
  t.ok(await settle(ended), 'every upstream exchange was abandoned with its client')
  t.ok(conns.unused() <= 50, `at most 5% spare upstream connections (${conns.opened()} opened for 1000 requests; ${conns.unused()} never used)`)
  t.ok(await conns.allClosed(15_000), `every upstream connection closes (${conns.open.size} left)`)
}

t.test('a 5,000-request burst to a dead upstream: every answer is 502, then sockets and handles return to baseline', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: `http://127.0.0.1:${await deadPort()}`, weight: 100 }))
  const handles = tcpSocketHandles()
  const agent = new http.Agent({ keepAlive: true, maxSockets: 100 })
  const statuses: Record<string, number> = {}
  let next = 0
  await Promise.all(Array.from({ length: 100 }, async () => {
    while (next < 5000) {
      const i = next++
      const r = await get(`${p.base}/api/orders/${i}`, { agent })
      const key = r.status === 502 && r.body === BODY_502 ? '502 generic' : `${r.status} ${r.body.slice(0, 40)}`
      statuses[key] = (statuses[key] ?? 0) + 1
    }
  }))
  t.same(statuses, { '502 generic': 5000 })
  agent.destroy()
  await proxySocketsAtBaseline(t, plane(p).server, handles)
  t.equal((await get(`${p.base}/other`)).status, 200, 'still serving')
})

t.test('a client that hangs up costs the upstream one request, and at most one idle spare connection', async t => {
  // `hangUp` resolves once the client has gone, with the exchange in flight at the upstream
  const cases: Record<string, { answer: (s: net.Socket) => void; hangUp: (port: number, arrived: Promise<string>) => Promise<void> }> = {
    'mid-request': {
      answer: () => {},
      hangUp: async (port, arrived) => {
        const s = net.connect(port, '127.0.0.1', () => s.write('POST /api/orders/1 HTTP/1.1\r\nhost: shop\r\ncontent-length: 1000\r\n\r\npart'))
        s.on('error', () => {})
        await arrived
        s.destroy()
      }
    },
    'mid-response': {
      answer: s => s.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nfirst bytes'),
      hangUp: port => new Promise(resolve => {
        const s = net.connect(port, '127.0.0.1', () => s.write('GET /api/orders/1 HTTP/1.1\r\nhost: shop\r\n\r\n'))
        s.on('error', () => {})
        s.once('data', () => {
          s.destroy()
          resolve()
        })
      })
    }
  }
  for (const [name, { answer, hangUp }] of Object.entries(cases)) {
    await t.test(name, async t => {
      const u = await rawUpstream(t, answer)
      const p = await proxy(t, routes({ legacy: u.url, new: u.url, weight: 100 }))
      const closed = new Promise<void>(resolve => u.server.once('connection', (s: net.Socket) => s.once('close', () => resolve())))
      await hangUp(p.proxyPort, u.nextRequest())
      await closed
      // a reconnection would arrive within a few loop turns of the close
      await settle(() => u.connections > 1, 2000)
      t.equal(u.requests, 1, 'the abandoned request is never sent again')
      // undici 7 (client-h1 onHttpSocketClose) puts an aborted request back in its
      // queue when the socket closes and opens a connection for it, which then
      // carries nothing and closes on its keep-alive timeout. Pinned so that a
      // fixed undici (one connection) or a worse one (more) both show up here.
      t.ok(u.connections >= 1 && u.connections <= 2, `${u.connections} connection(s) for one exchange`)
    })
  }
})

t.test('1,000 clients that abort mid-request: the upstream exchange is abandoned too, nothing stays open', async t => {
  let arrived = 0
  let closed = 0
  let batchArrived: () => void = () => {}
  const slow = await upstream(t, 'slow')
  slow.server.prependListener('request', (req: http.IncomingMessage) => {
    req.on('close', () => closed++)
    if (++arrived % 100 === 0) batchArrived()
  })
  const conns = watchConnections(slow.server)
  const legacy = await upstream(t, 'legacy')
  // 100 requests in flight at once: above the default maxConnections (64)
  const p = await proxy(t, routes({ legacy: legacy.url, new: slow.url, weight: 100 }).replace(`url: ${slow.url}\n`, `url: ${slow.url}\n    maxConnections: 100\n`))
  const handles = tcpSocketHandles()
  const head = 'POST /api/orders/upload HTTP/1.1\r\nhost: shop\r\ncontent-type: application/octet-stream\r\ncontent-length: 100000\r\n\r\n'
  for (let batch = 0; batch < 10; batch++) {
    const allArrived = new Promise<void>(resolve => { batchArrived = resolve })
    const clients = Array.from({ length: 100 }, () => {
      const s = net.connect(p.proxyPort, '127.0.0.1', () => s.write(head + 'x'.repeat(1000)))
      s.on('error', () => {})
      return s
    })
    // every request is at the upstream with 1,000 of its 100,000 bytes: now the clients go away
    await allArrived
    for (const s of clients) s.destroy()
  }
  t.equal(arrived, 1000)
  await upstreamSettles(t, conns, () => closed === 1000)
  t.equal(slow.seen.length, 0, 'no upstream request completed')
  await proxySocketsAtBaseline(t, plane(p).server, handles)
  t.equal((await get(`${p.base}/other`)).status, 200, 'still serving')
})

t.test('1,000 clients that abort mid-response: the upstream stream is abandoned too, nothing stays open', async t => {
  let abandoned = 0
  const dribble = await upstream(t, 'dribble', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(1000 * 1024) })
    res.write(Buffer.alloc(1024, 1))
    let sent = 1
    // a slow stream: 1 KiB every 20 ms, bounded at 1,000 chunks
    const timer = setInterval(() => {
      res.write(Buffer.alloc(1024, 2))
      if (++sent === 1000) {
        clearInterval(timer)
        res.end()
      }
    }, 20)
    res.on('close', () => {
      clearInterval(timer)
      if (!res.writableFinished) abandoned++
    })
  })
  const conns = watchConnections(dribble.server)
  const legacy = await upstream(t, 'legacy')
  // 100 responses in flight at once: above the default maxConnections (64)
  const p = await proxy(t, routes({ legacy: legacy.url, new: dribble.url, weight: 100 }).replace(`url: ${dribble.url}\n`, `url: ${dribble.url}\n    maxConnections: 100\n`))
  const handles = tcpSocketHandles()
  let firstChunks = 0
  for (let batch = 0; batch < 10; batch++) {
    await Promise.all(Array.from({ length: 100 }, (_, i) => new Promise<void>(resolve => {
      const req = http.get(`${p.base}/api/orders/${batch}-${i}`, { agent: false }, res => {
        res.once('data', () => {
          firstChunks++
          req.destroy()
          resolve()
        })
      })
      req.on('error', () => {})
    })))
  }
  t.equal(firstChunks, 1000, 'every client got the first chunk, then hung up')
  await upstreamSettles(t, conns, () => abandoned === 1000)
  await proxySocketsAtBaseline(t, plane(p).server, handles)
  t.equal((await get(`${p.base}/other`)).status, 200, 'still serving')
})

// 64 KiB slices of one random MiB at shifting offsets: 1,600 of them make 100 MiB
// whose order matters to the hash, without allocating per chunk.
const BLOCK = randomBytes(1 << 20)
const SLICE = 64 * 1024
const SLICES = 1600
function slice (i: number): Buffer {
  const at = (i * 7919 * 8) % (BLOCK.length - SLICE)
  return BLOCK.subarray(at, at + SLICE)
}
const TOTAL = SLICE * SLICES
const EXPECTED = (() => {
  const h = createHash('sha256')
  for (let i = 0; i < SLICES; i++) h.update(slice(i))
  return h.digest('hex')
})()
/** The warm-up transfer before the baseline: buffers, pools and the heap reach their working size. */
const WARMUP_SLICES = 256

// RSS also counts garbage: V8 frees the socket read buffers of a stream only
// when it collects, and it collects lazily, so RSS alone swings by tens of MiB
// between runs. Collecting before the baseline and every 32 bursts measures what
// is live, which is what a buffering proxy would grow.
v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

const MEMORY_CEILING = 64 * 1024 * 1024

/** Writes `count` slices to `out`, waiting for 'drain' whenever it asks to. */
async function writeAll (out: Writable, count = SLICES): Promise<void> {
  for (let i = 0; i < count; i++) {
    if (!out.write(slice(i))) await once(out, 'drain')
  }
}

interface Meter { baseline: number; peak: number; read: number }

function meter (): Meter {
  gc()
  const baseline = process.memoryUsage().rss
  return { baseline, peak: baseline, read: 0 }
}

/** Reads `stream` in bursts of 256 KiB every 2 ms (at most 128 MB/s, slower than the proxy can carry), sampling RSS; `m.read` counts the bytes read. */
function readSlowly (stream: Readable, m: Meter): Promise<{ bytes: number; hash: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    let ended = false
    let bursts = 0
    stream.on('end', () => { ended = true })
    stream.on('error', reject)
    stream.pause()
    const tick = (): void => {
      let n = 0
      let chunk: Buffer | null
      while (n < 256 * 1024 && (chunk = stream.read() as Buffer | null) !== null) {
        hash.update(chunk)
        n += chunk.length
      }
      m.read += n
      if (++bursts % 32 === 0) gc()
      m.peak = Math.max(m.peak, process.memoryUsage().rss)
      if (ended) resolve({ bytes: m.read, hash: hash.digest('hex') })
      else setTimeout(tick, 2)
    }
    tick()
  })
}

function mib (n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MiB`
}

t.test('a 100 MB response to a client that reads slowly: streamed with bounded memory, every byte intact', async t => {
  let m: Meter = meter()
  let unreadWhenWritten = -1
  const big = http.createServer((req, res) => {
    const count = req.url === '/warmup' ? WARMUP_SLICES : SLICES
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(SLICE * count) })
    void writeAll(res, count).then(() => {
      unreadWhenWritten = SLICE * count - m.read
      res.end()
    })
  })
  await new Promise<void>(resolve => big.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { big.closeAllConnections(); big.close() })
  const p = await proxy(t, routes({ legacy: `http://127.0.0.1:${(big.address() as AddressInfo).port}`, new: 'http://127.0.0.1:1', weight: 0 }))
  const download = (path: string): Promise<{ bytes: number; hash: string }> => new Promise((resolve, reject) => {
    http.get(`${p.base}${path}`, { agent: false }, res => {
      t.equal(res.statusCode, 200)
      readSlowly(res, m).then(resolve, reject)
    }).on('error', reject)
  })

  t.equal((await download('/warmup')).bytes, SLICE * WARMUP_SLICES)
  m = meter()
  const received = await download('/download')
  t.equal(received.bytes, TOTAL)
  t.equal(received.hash, EXPECTED, 'sha256 of what arrived matches what the upstream sent')
  // a buffering proxy would let the upstream finish long before the client, with most of 100 MiB in between
  t.ok(unreadWhenWritten >= 0 && unreadWhenWritten < MEMORY_CEILING, `the slow reader held the upstream back: ${mib(unreadWhenWritten)} unread when the upstream had written everything`)
  t.ok(m.peak - m.baseline < MEMORY_CEILING, `RSS grew by ${mib(m.peak - m.baseline)} at most (ceiling 64 MiB for 100 MiB sent)`)
})

t.test('a 100 MB upload to an upstream that reads slowly: streamed with bounded memory, every byte intact', async t => {
  let m: Meter = meter()
  const sink = http.createServer((req, res) => {
    readSlowly(req, m).then(({ bytes, hash }) => {
      const body = JSON.stringify({ bytes, hash })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    }, () => res.destroy())
  })
  await new Promise<void>(resolve => sink.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { sink.closeAllConnections(); sink.close() })
  const p = await proxy(t, routes({ legacy: `http://127.0.0.1:${(sink.address() as AddressInfo).port}`, new: 'http://127.0.0.1:1', weight: 0 }))
  let unreadWhenWritten = -1
  const upload = (count: number): Promise<{ status: number; body: string }> => new Promise((resolve, reject) => {
    const req = http.request(`${p.base}/upload`, { method: 'PUT', agent: false, headers: { 'content-length': String(SLICE * count) } }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode as number, body: Buffer.concat(chunks).toString() }))
    })
    req.on('error', reject)
    void writeAll(req, count).then(() => {
      unreadWhenWritten = SLICE * count - m.read
      req.end()
    })
  })

  t.equal((await upload(WARMUP_SLICES)).status, 200)
  m = meter()
  const answer = await upload(SLICES)
  t.equal(answer.status, 200)
  t.same(JSON.parse(answer.body), { bytes: TOTAL, hash: EXPECTED }, 'the upstream received every byte, in order')
  t.ok(unreadWhenWritten >= 0 && unreadWhenWritten < MEMORY_CEILING, `the slow upstream held the uploading client back: ${mib(unreadWhenWritten)} unread when the client had written everything`)
  t.ok(m.peak - m.baseline < MEMORY_CEILING, `RSS grew by ${mib(m.peak - m.baseline)} at most (ceiling 64 MiB for 100 MiB sent)`)
})
