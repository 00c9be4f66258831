import { execFile } from 'node:child_process'
import pino from 'pino'
import t from 'tap'
import { signPreview } from '../../src/routing/preview.ts'
import { admin, configFile, get, proxy, serveProcess, upstream, whoAnswers } from '../helpers.ts'

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname

const TOKEN = 'tok'
const SECRET = 'preview-secret'

/** orders at `weight` with the three segments; carts at 100 with one query segment to legacy. */
function config (legacy: string, next: string, weight: number, server = ''): string {
  return `server:
  listen: 127.0.0.1:0
  admin: 127.0.0.1:0
  adminToken: ${TOKEN}
${server}
upstreams:
  monolith: { url: ${legacy} }
  orders-svc: { url: ${next} }
default: monolith
contexts:
  orders:
    match: { paths: [/api/orders] }
    legacy: monolith
    new: orders-svc
    weight: ${weight}
    sticky: { header: x-user-id }
    segments:
      - { header: x-tenant, values: [acme, globex], side: new }
      - { cookie: beta, values: ["1"], side: new, name: beta }
      - { query: region, values: [eu], side: legacy }
  carts:
    match: { paths: [/api/carts] }
    legacy: monolith
    new: orders-svc
    weight: 100
    segments:
      - { query: region, values: [eu], side: legacy }
`
}

const acme = { headers: { 'X-Tenant': 'acme' } }

t.test('a request with the header, cookie or query value reaches the pinned side through the proxy, whatever the weight', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, config(legacy.url, next.url, 0))
  t.equal(await whoAnswers(`${p.base}/api/orders/7`, acme), 'new')
  t.equal(await whoAnswers(`${p.base}/api/orders/7`, { headers: { 'x-tenant': 'globex' } }), 'new')
  t.equal(await whoAnswers(`${p.base}/api/orders/7`, { headers: { 'x-tenant': 'ACME' } }), 'legacy', 'values are case-sensitive')
  t.equal(await whoAnswers(`${p.base}/api/orders`, { headers: { cookie: 'sid=x; beta=1' } }), 'new')
  t.equal(await whoAnswers(`${p.base}/api/orders`, { headers: { cookie: 'beta=0' } }), 'legacy')
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'legacy')
  t.equal(await whoAnswers(`${p.base}/api/carts?region=%65u`), 'legacy', 'query values are percent-decoded')
  t.equal(await whoAnswers(`${p.base}/api/carts?region=us`), 'new')
  t.equal(await whoAnswers(`${p.base}/api/orders?region=eu`, acme), 'new', 'the first segment that matches decides')
  // The pinned request reaches the upstream unchanged: the segment's header, cookie and query go along.
  t.strictSame([next.seen[0].url, next.seen[0].headers['x-tenant']], ['/api/orders/7', 'acme'])
  t.equal(next.seen[2].headers.cookie, 'sid=x; beta=1')
  t.equal(legacy.seen.find(s => s.url.startsWith('/api/carts'))?.url, '/api/carts?region=%65u')
})

t.test('a rollback sends the segments to legacy too; a weight override leaves them in force; a preview token beats them', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, config(legacy.url, next.url, 0), { env: { STRANGLER_PREVIEW_SECRET: SECRET } })
  const preview = (side: 'new' | 'legacy'): string => signPreview(SECRET, { context: 'orders', side, expires: Math.floor(Date.now() / 1000) + 600 })

  t.equal(await whoAnswers(`${p.base}/api/orders`, { headers: { 'x-tenant': 'acme', 'x-strangler-preview': preview('legacy') } }), 'legacy', 'a preview token beats a segment')
  t.equal(await whoAnswers(`${p.base}/api/orders?region=eu`, { headers: { 'x-strangler-preview': preview('new') } }), 'new')

  t.equal((await admin(p, 'POST', '/contexts/orders/rollback', { token: TOKEN, body: { reason: 'INC-1' } })).status, 200)
  t.equal(await whoAnswers(`${p.base}/api/orders`, acme), 'legacy', 'rolled back: the tenant goes to legacy')
  t.equal(await whoAnswers(`${p.base}/api/orders`, { headers: { cookie: 'beta=1' } }), 'legacy')
  t.equal(await whoAnswers(`${p.base}/api/orders`, { headers: { 'x-tenant': 'acme', 'x-strangler-preview': preview('new') } }), 'new', 'a tester still previews new during a rollback')

  t.equal((await admin(p, 'PUT', '/contexts/orders/weight', { token: TOKEN, body: { weight: 30, reason: 'slower' } })).status, 200)
  t.equal(await whoAnswers(`${p.base}/api/orders`, acme), 'new', 'an override to 30 is no rollback: the segment holds')
  t.equal(await whoAnswers(`${p.base}/api/orders?region=eu`, { headers: { 'x-user-id': 'u-in-new' } }), 'legacy')

  t.equal((await admin(p, 'PUT', '/contexts/orders/weight', { token: TOKEN, body: { weight: 0, reason: 'stop' } })).status, 200)
  t.equal(await whoAnswers(`${p.base}/api/orders`, acme), 'legacy', 'an operator override to 0 is a rollback')

  t.equal((await admin(p, 'DELETE', '/contexts/orders/override', { token: TOKEN })).status, 200)
  t.equal(await whoAnswers(`${p.base}/api/orders`, acme), 'new', 'cleared: the configured weight 0 is no rollback')
})

t.test('the sticky split of traffic no segment pins follows the weight override, and only moves legacy → new', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, config(legacy.url, next.url, 20))
  const users = Array.from({ length: 200 }, (_, i) => `user-${i}`)
  const sides = async (): Promise<string[]> => Promise.all(users.map(u => whoAnswers(`${p.base}/api/orders`, { headers: { 'x-user-id': u } })))
  const at20 = await sides()
  t.equal((await admin(p, 'PUT', '/contexts/orders/weight', { token: TOKEN, body: { weight: 60 } })).status, 200)
  const at60 = await sides()
  t.equal(users.filter((_, i) => at20[i] === 'new' && at60[i] === 'legacy').length, 0, 'nobody moves back')
  t.ok(at60.filter(s => s === 'new').length > at20.filter(s => s === 'new').length, 'some move to new')
  t.equal(await whoAnswers(`${p.base}/api/orders`, { headers: { 'x-user-id': users[0], 'x-tenant': 'acme' } }), 'new')
})

t.test('with server.workers, a rollback reaches every worker and sends the segments to legacy', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const file = configFile(t, config(legacy.url, next.url, 0, '  workers: 2'))
  const { until } = serveProcess(t, file, ['--no-watch'])
  const started = await until('proxy listening')
  const base = `http://${started.listen}`
  const sides = async (): Promise<string[]> => {
    const names = new Set<string>()
    // A fresh connection each: the cluster spreads connections over the workers.
    for (let i = 0; i < 12; i++) names.add(await whoAnswers(`${base}/api/orders`, acme))
    return [...names]
  }
  t.strictSame(await sides(), ['new'])
  const rb = await get(`http://${started.admin}/contexts/orders/rollback`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(rb.status, 200)
  t.strictSame(await sides(), ['legacy'])
  const w = await get(`http://${started.admin}/contexts/orders/weight`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"weight":30}' })
  t.equal(w.status, 200)
  t.strictSame(await sides(), ['new'])
})

/** Access-log lines of requests, as they are written; `count(n)` resolves once there are n. */
function accessLog (): { log: pino.Logger; count: (n: number) => Promise<Array<Record<string, any>>> } {
  const lines: Array<Record<string, any>> = []
  let waiting: { n: number; resolve: () => void } | null = null
  const log = pino({ level: 'info' }, {
    write (s: string) {
      const line = JSON.parse(s)
      if (line.msg === 'request') lines.push(line)
      if (waiting !== null && lines.length >= waiting.n) waiting.resolve()
    }
  })
  return { log, count: async n => { if (lines.length < n) await new Promise<void>(resolve => { waiting = { n, resolve } }); return lines } }
}

t.test('/status, strangler status, the metrics and the access log name the segment that decided, never the value', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const { log, count } = accessLog()
  const p = await proxy(t, config(legacy.url, next.url, 0, '  accessLog: true'), { log })
  t.equal(await whoAnswers(`${p.base}/api/orders`, acme), 'new')
  t.equal(await whoAnswers(`${p.base}/api/orders`, acme), 'new')
  t.equal(await whoAnswers(`${p.base}/api/orders`, { headers: { cookie: 'beta=1' } }), 'new')
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'legacy')
  const lines = await count(4)
  t.strictSame(lines.map(l => [l.side, l.segment]), [['new', '0'], ['new', '0'], ['new', 'beta'], ['legacy', undefined]])

  const m = (await admin(p, 'GET', '/metrics')).text
  const series = m.split('\n').filter(l => l.startsWith('strangler_segment_requests_total{'))
  t.strictSame(series.sort(), [
    'strangler_segment_requests_total{context="carts",segment="0",side="legacy"} 0',
    'strangler_segment_requests_total{context="orders",segment="0",side="new"} 2',
    'strangler_segment_requests_total{context="orders",segment="2",side="legacy"} 0',
    'strangler_segment_requests_total{context="orders",segment="beta",side="new"} 1'
  ])
  t.notMatch(m, 'acme')

  const status = (await admin(p, 'GET', '/status')).json.contexts[0]
  t.strictSame([status.segments, status.segmentsInForce], [[
    { label: '0', header: 'x-tenant', values: ['acme', 'globex'], side: 'new' },
    { label: 'beta', cookie: 'beta', values: ['1'], side: 'new', name: 'beta' },
    { label: '2', query: 'region', values: ['eu'], side: 'legacy' }
  ], true])

  t.equal((await admin(p, 'POST', '/contexts/orders/rollback', { token: TOKEN, body: { reason: 'INC-2' } })).status, 200)
  t.equal((await admin(p, 'GET', '/status')).json.contexts[0].segmentsInForce, false)
  const cli = await new Promise<string>(resolve => {
    execFile(process.execPath, [CLI, 'status'], { env: { PATH: process.env.PATH, STRANGLER_ADMIN_URL: `http://127.0.0.1:${p.adminPort}` } }, (_err, stdout) => resolve(stdout))
  })
  t.equal(cli.slice(cli.indexOf('SEGMENTS')), [
    'SEGMENTS (before the weight; the first that matches decides)',
    'CONTEXT  SEGMENT  PINS',
    'orders   0        header x-tenant = acme, globex → new (off: rolled back)',
    'orders   beta     cookie beta = 1 → new (off: rolled back)',
    'orders   2        query region = eu → legacy (off: rolled back)',
    'carts    0        query region = eu → legacy', ''].join('\n'))
})
