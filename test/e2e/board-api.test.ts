import { writeFileSync } from 'node:fs'
import t from 'tap'
import { admin, configFile, get, proxy, routes, serveProcess, upstream } from '../helpers.ts'

const TOKEN = 'board-token'

const withAuth = (boardAuth: boolean, token = `  adminToken: ${TOKEN}\n`): string => `${token}  boardAuth: ${boardAuth}`

t.test('boardAuth off (the default): the board, its data and /status are open; actions still need the token', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 30, server: `  adminToken: ${TOKEN}` }))
  const data = await admin(p, 'GET', '/board/data')
  t.equal(data.status, 200)
  t.strictSame(data.json.contexts.map((c: { name: string; stageLabel: string }) => [c.name, c.stageLabel]), [['orders', 'ramping 30%']])
  t.equal((await admin(p, 'GET', '/status')).status, 200)
  t.equal((await admin(p, 'POST', '/contexts/orders/rollback')).status, 401)
})

t.test('boardAuth on: /status and /board/data need the token; the page shell, health, readiness and metrics do not', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 30, server: withAuth(true) }))
  for (const route of ['/status', '/board/data']) {
    const none = await admin(p, 'GET', route)
    t.equal(none.status, 401, `${route} without a token`)
    t.strictSame(none.json, { statusCode: 401, status: 401, code: 'STRANGLER_UNAUTHORIZED', message: 'Send the admin token as "Authorization: Bearer <token>".' })
    t.equal((await admin(p, 'GET', route, { token: 'wrong' })).status, 401, `${route} with a wrong token`)
    t.equal((await admin(p, 'GET', route, { token: TOKEN })).status, 200, `${route} with the token`)
  }
  for (const route of ['/healthz', '/readyz', '/metrics', '/board.js', '/board.css']) t.equal((await admin(p, 'GET', route)).status, 200, `${route} stays open`)
  const page = await admin(p, 'GET', '/')
  t.equal(page.status, 200)
  t.notMatch(page.text, /orders|monolith|orders-svc/, 'the page shell reveals no topology')
})

t.test('the page is served with a strict CSP, no framing, nothing cached', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0 }))
  const page = await get(`http://127.0.0.1:${p.adminPort}/`)
  t.equal(page.headers['content-type'], 'text/html; charset=utf-8')
  t.equal(page.headers['content-security-policy'], "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
  t.equal(page.headers['x-frame-options'], 'DENY')
  t.equal(page.headers['x-content-type-options'], 'nosniff')
  t.equal(page.headers['cache-control'], 'no-store')
  t.notMatch(page.body, /<script>|<style>|\son\w+=|https?:\/\//, 'no inline script or style, no handler attributes, no absolute URL')
  t.match(page.body, '<script src="/board.js" defer></script>')
  const script = await get(`http://127.0.0.1:${p.adminPort}/board.js`)
  t.equal(script.headers['content-type'], 'text/javascript; charset=utf-8')
  t.notMatch(script.body, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|https?:\/\//, 'values reach the DOM as text only, and nothing is fetched from elsewhere')
  t.equal((await get(`http://127.0.0.1:${p.adminPort}/board/data`)).headers['cache-control'], 'no-store')
})

t.test('boardAuth without an admin token refuses reading (403) instead of opening it', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0, server: withAuth(true, '') }))
  const r = await admin(p, 'GET', '/board/data', { token: 'anything' })
  t.equal(r.status, 403)
  t.equal(r.json.code, 'STRANGLER_ADMIN_DISABLED')
  t.equal((await admin(p, 'GET', '/status')).status, 403)
})

t.test('boardAuth follows a reload, like every other setting read per request', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0, server: withAuth(false) }))
  t.equal((await admin(p, 'GET', '/board/data')).status, 200)
  writeFileSync(p.file, routes({ legacy: legacy.url, new: legacy.url, weight: 0, server: withAuth(true) }))
  t.equal((await admin(p, 'POST', '/reload', { token: TOKEN })).status, 200)
  t.equal((await admin(p, 'GET', '/board/data')).status, 401)
})

/** Reads /board/data until it has a window (its snapshots are at least a second apart). */
async function withWindow (url: string): Promise<any> {
  for (;;) {
    const data = JSON.parse((await get(url)).body)
    if (data.window !== null) return data
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

t.test('with server.workers the live numbers count the answers of every worker', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const file = configFile(t, routes({ legacy: legacy.url, new: next.url, weight: 100, server: '  workers: 2' }))
  const { until } = serveProcess(t, file, ['--no-watch'])
  const started = await until('proxy listening')
  const data = `http://${started.admin}/board/data`
  t.equal(JSON.parse((await get(data)).body).window, null, 'the first read starts the window')
  // A fresh connection each: the cluster spreads them over both workers.
  for (let i = 0; i < 30; i++) await get(`http://${started.listen}/api/orders/${i}`)
  const d = await withWindow(data)
  const orders = d.contexts[0]
  t.equal(Math.round(orders.traffic.new.rps * d.window), 30, 'all 30 answers, whichever worker served them')
  t.equal(orders.traffic.legacy.rps, 0)
  t.equal(orders.traffic.new.errorRate, 0)
  t.equal(d.traffic.newShare, 100)
  t.equal(orders.shadow, null)
})

t.test('the board data lists dormant overrides: a rollback kept for a context that is not in the config', async t => {
  const legacy = await upstream(t, 'legacy')
  const carts = '  carts:\n    match: { paths: [/api/carts] }\n    legacy: monolith\n    new: orders-svc\n    weight: 100'
  const server = `  adminToken: ${TOKEN}`
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 30, server, extra: carts }))
  t.equal((await admin(p, 'POST', '/contexts/carts/rollback', { token: TOKEN, body: { reason: 'INC-5' } })).status, 200)
  t.strictSame((await admin(p, 'GET', '/board/data')).json.dormantOverrides, [])
  writeFileSync(p.file, routes({ legacy: legacy.url, new: legacy.url, weight: 30, server }))
  t.equal((await p.reload('admin')).ok, true)
  const data = await admin(p, 'GET', '/board/data')
  t.strictSame(data.json.contexts.map((c: { name: string }) => c.name), ['orders'])
  t.match(data.json.dormantOverrides, [{ context: 'carts', weight: 0, reason: 'INC-5', by: 'admin' }])
})
