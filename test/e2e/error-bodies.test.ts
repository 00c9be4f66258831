import { writeFileSync } from 'node:fs'
import t from 'tap'
import { admin, deadPort, get, proxy, routes, upstream } from '../helpers.ts'

const TOKEN = 'errors-token'

/** The one shape of every error body, data plane and admin: `statusCode` and `status` both carry the HTTP status. */
const body = (status: number, code: string, message: string): Record<string, unknown> => ({ statusCode: status, status, code, message })

t.test('the admin API answers every error in the one shape, with its code and a message that says what to do', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 30, server: `  adminToken: ${TOKEN}` }))
  const cases: Array<[string, string, { token?: string; body?: unknown }, number, string, string]> = [
    ['POST', '/contexts/orders/rollback', {}, 401, 'STRANGLER_UNAUTHORIZED', 'Send the admin token as "Authorization: Bearer <token>".'],
    ['PUT', '/contexts/billing/weight', { token: TOKEN, body: { weight: 5 } }, 404, 'STRANGLER_UNKNOWN_CONTEXT', 'No context named "billing". Contexts: orders.'],
    ['DELETE', '/contexts/orders/override', { token: TOKEN }, 404, 'STRANGLER_NO_OVERRIDE', 'Context "orders" has no runtime override; it runs on its configured weight.'],
    ['PUT', '/contexts/orders/weight', { token: TOKEN, body: { weight: 101 } }, 400, 'STRANGLER_BAD_WEIGHT', '"weight" must be from 0 to 100, got 101'],
    ['PUT', '/contexts/orders/weight', { token: TOKEN, body: { weight: 5, upstream: 'x' } }, 400, 'STRANGLER_BAD_REQUEST', 'unknown field "upstream"; allowed: weight, reason, ttl'],
    ['GET', '/nowhere?x=1', {}, 404, 'STRANGLER_NOT_FOUND', 'No admin route GET /nowhere.']
  ]
  for (const [method, route, opts, status, code, message] of cases) {
    const r = await admin(p, method, route, opts)
    t.equal(r.status, status, `${method} ${route}`)
    t.strictSame(r.json, body(status, code, message), `${method} ${route}: ${code}`)
  }
  const url = `http://127.0.0.1:${p.adminPort}/contexts/orders/rollback`
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }
  const broken = await get(url, { method: 'POST', headers, body: '{"reason":' })
  t.equal(broken.status, 400)
  t.strictSame(JSON.parse(broken.body), body(400, 'STRANGLER_BAD_REQUEST', 'Body is not valid JSON but content-type is set to \'application/json\''), 'a body that is not JSON')
  const large = await get(url, { method: 'POST', headers, body: JSON.stringify({ reason: 'x'.repeat(20_000) }) })
  t.equal(large.status, 413)
  t.strictSame(JSON.parse(large.body), body(413, 'STRANGLER_BAD_REQUEST', 'Request body is too large'), 'a body over 16 KiB keeps its 413 status')
  writeFileSync(p.file, 'server: [')
  const reload = await admin(p, 'POST', '/reload', { token: TOKEN })
  t.equal(reload.status, 422)
  t.strictSame(Object.keys(reload.json), ['statusCode', 'status', 'code', 'message', 'errors'])
  t.strictSame({ ...reload.json, errors: [] }, { ...body(422, 'STRANGLER_CONFIG_INVALID', 'The config file is invalid; the last good config keeps serving.'), errors: [] })
  t.equal(reload.json.errors.length, 1, 'every problem of the file is listed')
  t.match(reload.json.errors[0], /:1:\d+ /, 'with its line and column')
})

t.test('without an admin token, mutations answer 403 STRANGLER_ADMIN_DISABLED in the same shape', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 30 }))
  const r = await admin(p, 'POST', '/contexts/orders/rollback', { token: 'anything' })
  t.equal(r.status, 403)
  t.strictSame(r.json, body(403, 'STRANGLER_ADMIN_DISABLED', 'Admin mutations are disabled because no admin token is configured. Set server.adminToken in the config (for example adminToken: ${STRANGLER_ADMIN_TOKEN}) and start the proxy with that variable set.'))
})

t.test('the proxy answers its errors in the same shape, byte for byte', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: `http://127.0.0.1:${await deadPort()}`, new: legacy.url, weight: 0 }))
  const bad = await get(`${p.base}/api/orders/a%2Fb`)
  t.equal(bad.status, 400)
  t.equal(bad.body, '{"statusCode":400,"status":400,"code":"STRANGLER_BAD_PATH","message":"The request path is not canonical: dot segments, encoded slashes, backslashes, NUL, control bytes and malformed escapes are refused."}')
  const down = await get(`${p.base}/api/orders/1`)
  t.equal(down.status, 502)
  t.equal(down.body, '{"statusCode":502,"status":502,"code":"STRANGLER_UPSTREAM_UNAVAILABLE","message":"The service behind this proxy did not answer."}')
})
