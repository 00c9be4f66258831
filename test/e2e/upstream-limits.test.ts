import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { upstreamErrors } from '../faults.ts'
import { get, proxy, routes } from '../helpers.ts'

/*
 * upstreams.NAME.maxConnections and queueTimeout: the proxy opens at most that
 * many connections to an upstream; further requests wait, in order, and those
 * that wait longer than queueTimeout are answered 503 with Retry-After. A
 * request already sent upstream is governed by `timeout` only.
 */

interface CountingUpstream {
  url: string
  /** Most connections open at once. */
  most: number
  /** Requests received, in order of arrival. */
  paths: string[]
  /** Answers every request held so far, and from now on those that arrive. */
  release: () => void
  /** Resolves when `n` requests have arrived. */
  received: (n: number) => Promise<void>
}

/** An upstream that counts its open connections and holds every answer until `release()` (or for `holdMs`). */
async function countingUpstream (t: Test, holdMs = Infinity): Promise<CountingUpstream> {
  let open = 0
  let released = false
  const held: Array<() => void> = []
  const waiters: Array<{ n: number; resolve: () => void }> = []
  const u: CountingUpstream = {
    url: '',
    most: 0,
    paths: [],
    release: () => {
      released = true
      for (const answer of held.splice(0)) answer()
    },
    received: n => new Promise(resolve => {
      if (u.paths.length >= n) resolve()
      else waiters.push({ n, resolve })
    })
  }
  const server = http.createServer((req, res) => {
    u.paths.push(req.url as string)
    for (const w of waiters.filter(w => u.paths.length >= w.n)) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve()
    }
    const answer = (): void => { res.end(req.url) }
    if (released) answer()
    else if (holdMs !== Infinity) setTimeout(answer, holdMs)
    else held.push(answer)
  })
  server.on('connection', socket => {
    u.most = Math.max(u.most, ++open)
    socket.on('close', () => open--)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => {
    server.close(() => resolve())
    server.closeAllConnections()
  }))
  u.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return u
}

const BUSY = '{"statusCode":503,"status":503,"code":"STRANGLER_UPSTREAM_BUSY","message":"The service behind this proxy is busy; retry later."}'

t.test('maxConnections: 4 and 50 concurrent clients: the upstream never sees more than 4 connections, and every client is answered', async t => {
  const up = await countingUpstream(t, 20)
  const p = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0 }).replace(`url: ${up.url}\n`, `url: ${up.url}\n    maxConnections: 4\n`))
  const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => get(`${p.base}/r/${i}`)))
  t.same(answers.map(a => `${a.status} ${a.body}`), Array.from({ length: 50 }, (_, i) => `200 /r/${i}`))
  t.equal(up.most, 4)
  t.equal(up.paths.length, 50)
})

t.test('queueTimeout: a request that waits too long gets 503 with Retry-After, counted as queue_timeout; the one already sent upstream is not cut', async t => {
  const up = await countingUpstream(t)
  const p = await proxy(t, routes({ legacy: up.url, new: up.url, weight: 0 }).replace(`url: ${up.url}\n`, `url: ${up.url}\n    maxConnections: 1\n    queueTimeout: 200ms\n`))
  const first = get(`${p.base}/first`)
  await up.received(1)
  const waited = await get(`${p.base}/second`)
  t.equal(waited.status, 503)
  t.equal(waited.headers['retry-after'], '1')
  t.equal(waited.headers['content-type'], 'application/json')
  t.equal(waited.body, BUSY)
  // The first request has been upstream longer than queueTimeout: it still gets its answer.
  up.release()
  const served = await first
  t.equal(served.status, 200)
  t.equal(served.body, '/first')
  t.same(up.paths, ['/first'])
  t.same(await upstreamErrors(p, 'default', 'legacy'), { queue_timeout: 1 })
  // The connection is free again: the next request goes through.
  t.equal((await get(`${p.base}/third`)).body, '/third')
})
