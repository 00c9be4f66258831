import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { admin, get, proxy, quietLog, recordingLog, routes, tempDir, upstream, whoAnswers } from '../helpers.ts'
import { startStrangler } from '../../src/main.ts'

const TOKEN = 's3cret-token'
const withToken = '  adminToken: ${ADMIN_TOKEN}'

async function pair (t: Test) {
  return { legacy: await upstream(t, 'legacy'), next: await upstream(t, 'new') }
}

t.test('mutations need the bearer token; GET never mutates', async t => {
  const { legacy, next } = await pair(t)
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 100, server: withToken }), { env: { ADMIN_TOKEN: TOKEN } })
  const none = await admin(p, 'POST', '/contexts/orders/rollback')
  t.equal(none.status, 401)
  t.equal(none.json.code, 'STRANGLER_UNAUTHORIZED')
  const wrong = await admin(p, 'POST', '/contexts/orders/rollback', { token: 'nope' })
  t.equal(wrong.status, 401)
  const viaGet = await admin(p, 'GET', '/contexts/orders/rollback', { token: TOKEN })
  t.equal(viaGet.status, 404)
  t.equal(viaGet.json.code, 'STRANGLER_NOT_FOUND')
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'new', 'nothing changed')
  const status = await admin(p, 'GET', '/status')
  t.same(status.json.contexts, [{ name: 'orders', configuredWeight: 100, effectiveWeight: 100, override: null }])
})

t.test('no token configured: mutations are refused with 403 and say how to set one', async t => {
  const { legacy, next } = await pair(t)
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 100 }))
  const r = await admin(p, 'POST', '/contexts/orders/rollback', { token: 'anything' })
  t.equal(r.status, 403)
  t.equal(r.json.code, 'STRANGLER_ADMIN_DISABLED')
  t.match(r.json.message, 'server.adminToken')
})

t.test('rollback takes effect on the very next proxied request; weight and clear too', async t => {
  const { legacy, next } = await pair(t)
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 100, server: withToken }), { env: { ADMIN_TOKEN: TOKEN } })
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'new')
  const r = await admin(p, 'POST', '/contexts/orders/rollback', { token: TOKEN, body: { reason: 'INC-42 errors on checkout' } })
  t.equal(r.status, 200)
  t.equal(r.json.effectiveWeight, 0)
  t.equal(r.json.override.reason, 'INC-42 errors on checkout')
  t.equal(r.json.persisted, true)
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'legacy')

  const bad = await admin(p, 'PUT', '/contexts/orders/weight', { token: TOKEN, body: { weight: 150 } })
  t.equal(bad.status, 400)
  t.equal(bad.json.code, 'STRANGLER_BAD_WEIGHT')
  const decimals = await admin(p, 'PUT', '/contexts/orders/weight', { token: TOKEN, body: { weight: 1.234 } })
  t.equal(decimals.status, 400)
  const unknown = await admin(p, 'PUT', '/contexts/nope/weight', { token: TOKEN, body: { weight: 5 } })
  t.equal(unknown.status, 404)
  t.equal(unknown.json.code, 'STRANGLER_UNKNOWN_CONTEXT')
  const extra = await admin(p, 'PUT', '/contexts/orders/weight', { token: TOKEN, body: { weight: 5, upstream: 'evil' } })
  t.equal(extra.status, 400, 'an override cannot name an upstream')
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'legacy', 'refused calls changed nothing')

  const w = await admin(p, 'PUT', '/contexts/orders/weight', { token: TOKEN, body: { weight: 100, reason: 'fixed' } })
  t.equal(w.status, 200)
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'new')
  const cleared = await admin(p, 'DELETE', '/contexts/orders/override', { token: TOKEN })
  t.same(cleared.json, { name: 'orders', configuredWeight: 100, effectiveWeight: 100, override: null, persisted: true })
  const again = await admin(p, 'DELETE', '/contexts/orders/override', { token: TOKEN })
  t.equal(again.status, 404)
  t.equal(again.json.code, 'STRANGLER_NO_OVERRIDE')
})

t.test('an override with a ttl lapses back to the configured weight', async t => {
  const { legacy, next } = await pair(t)
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 100, server: withToken }), { env: { ADMIN_TOKEN: TOKEN } })
  const r = await admin(p, 'POST', '/contexts/orders/rollback', { token: TOKEN, body: { ttl: '300ms' } })
  t.equal(r.status, 200)
  t.type(r.json.override.expiresAt, 'string')
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'legacy')
  await once(p.overrides, 'change')
  t.equal(p.overrides.get('orders'), null)
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'new')
})

t.test('an override survives a restart, and a YAML change of that context clears it', async t => {
  const { legacy, next } = await pair(t)
  const dir = tempDir(t)
  const file = path.join(dir, 'routes.yaml')
  writeFileSync(file, routes({ legacy: legacy.url, new: next.url, weight: 100, server: withToken }))
  const env = { ADMIN_TOKEN: TOKEN }
  const first = await startStrangler({ configFile: file, env, log: quietLog, watch: false, processMetrics: false })
  t.equal((await admin(first, 'POST', '/contexts/orders/rollback', { token: TOKEN, body: { reason: 'incident' } })).status, 200)
  await first.close()

  const second = await startStrangler({ configFile: file, env, log: quietLog, watch: false, processMetrics: false })
  t.teardown(() => second.close())
  t.equal(await whoAnswers(`http://127.0.0.1:${second.proxyPort}/api/orders`), 'legacy', 'still rolled back after the restart')
  t.equal(second.overrides.get('orders')?.reason, 'incident')

  writeFileSync(file, routes({ legacy: legacy.url, new: next.url, weight: 50, server: withToken }))
  t.equal((await second.reload('admin')).ok, true)
  t.equal(second.overrides.get('orders'), null, 'the YAML wins')
  const status = await admin(second, 'GET', '/status')
  t.same(status.json.contexts, [{ name: 'orders', configuredWeight: 50, effectiveWeight: 50, override: null }])
})

t.test('a corrupt state file starts with no overrides and a logged warning', async t => {
  const { legacy, next } = await pair(t)
  const dir = tempDir(t)
  writeFileSync(path.join(dir, 'strangler-state.json'), '{"version": 1, "overrides": {"orders": {"weight": "x"')
  const { log, lines } = recordingLog()
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 100 }), { configFile: path.join(dir, 'routes.yaml'), log, processMetrics: false })
    .catch(() => null)
  t.equal(p, null, 'no config file yet')
  writeFileSync(path.join(dir, 'routes.yaml'), routes({ legacy: legacy.url, new: next.url, weight: 100 }))
  const s = await proxy(t, '', { configFile: path.join(dir, 'routes.yaml'), log, processMetrics: false })
  t.equal(await whoAnswers(`${s.base}/api/orders`), 'new')
  const warning = lines.find(l => l.msg === 'runtime overrides could not be read: starting with none')
  t.equal(warning?.level, 40)
})

t.test('a state file that cannot be written is reported in /status, and the override still applies', async t => {
  const { legacy, next } = await pair(t)
  const dir = tempDir(t)
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 100, server: `${withToken}\n  stateFile: ${dir}/missing-dir/state.json` }), { env: { ADMIN_TOKEN: TOKEN } })
  const r = await admin(p, 'POST', '/contexts/orders/rollback', { token: TOKEN })
  t.equal(r.status, 200)
  t.equal(r.json.persisted, false)
  t.match(r.json.warning, 'will not survive a restart')
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'legacy')
  const status = await admin(p, 'GET', '/status')
  t.match(status.json.state.lastError, 'missing-dir/state.json')
})

t.test('health, readiness and reload through the API', async t => {
  const { legacy, next } = await pair(t)
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 0, server: withToken }), { env: { ADMIN_TOKEN: TOKEN } })
  t.same((await admin(p, 'GET', '/healthz')).json, { status: 'ok' })
  t.same((await admin(p, 'GET', '/readyz')).json, { status: 'ready' })
  writeFileSync(p.file, routes({ legacy: legacy.url, new: next.url, weight: 100, server: withToken }))
  const r = await admin(p, 'POST', '/reload', { token: TOKEN })
  t.equal(r.status, 200)
  t.equal(r.json.changed, true)
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'new')
  writeFileSync(p.file, 'upstreams: [')
  const bad = await admin(p, 'POST', '/reload', { token: TOKEN })
  t.equal(bad.status, 422)
  t.equal(bad.json.code, 'STRANGLER_CONFIG_INVALID')
  t.ok(bad.json.errors.length > 0)
  t.same((await admin(p, 'GET', '/status')).json.config.lastError, bad.json.errors)
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'new')
  t.equal((await get(`${p.base}/metrics`)).status, 200, 'the proxy port has no admin routes: /metrics is proxied upstream')
  t.same(JSON.parse((await get(`${p.base}/metrics`)).body).name, 'legacy')
})

t.test('every override is one audit line: who, what changed, why', async t => {
  const { legacy, next } = await pair(t)
  const { log, lines } = recordingLog()
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 40, server: withToken }), { env: { ADMIN_TOKEN: TOKEN }, log })
  await admin(p, 'POST', '/contexts/orders/rollback', { token: TOKEN, body: { reason: 'INC-9' } })
  await admin(p, 'PUT', '/contexts/orders/weight', { token: TOKEN, body: { weight: 12.5, reason: 'resume', ttl: '1h' } })
  await admin(p, 'DELETE', '/contexts/orders/override', { token: TOKEN })
  const audit = lines.filter(l => l.audit === true).map(l => ({ action: l.action, context: l.context, by: l.by, weight: l.weight, reason: l.reason }))
  t.same(audit, [
    { action: 'rollback', context: 'orders', by: 'admin', weight: { from: 40, to: 0 }, reason: 'INC-9' },
    { action: 'weight', context: 'orders', by: 'admin', weight: { from: 0, to: 12.5 }, reason: 'resume' },
    { action: 'clear-override', context: 'orders', by: 'admin', weight: { from: 12.5, to: 40 }, reason: 'cleared through the admin API' }
  ])
})
