import { existsSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import type { Strangler } from '../../src/main.ts'
import { get, proxy, routes, upstream, whoAnswers, type NamedUpstream } from '../helpers.ts'

/*
 * The admin API under attack: it is unreachable through the proxy port,
 * refuses every mutation without the exact token, and can only ever set a
 * weight, never name an upstream. After every refused call, nothing changed:
 * /status, routing and the state file are as they were.
 */

const TOKEN = 'Adm1n-T0ken-0123456789'

interface Rig { p: Strangler & { base: string; file: string }; legacy: NamedUpstream; next: NamedUpstream }

async function rig (t: Test): Promise<Rig> {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 100, server: '  adminToken: ${ADMIN_TOKEN}' }), { env: { ADMIN_TOKEN: TOKEN } })
  return { p, legacy, next }
}

/** A raw admin call: the Authorization header and the body exactly as given. */
async function call (p: Strangler, method: string, route: string, opts: { authorization?: string; body?: string; contentType?: string } = {}): Promise<{ status: number; json: any; text: string }> {
  const headers: Record<string, string> = {}
  if (opts.authorization !== undefined) headers.authorization = opts.authorization
  if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json'
  const r = await get(`http://127.0.0.1:${p.adminPort}${route}`, { method, headers, body: opts.body })
  let json: any = null
  try { json = JSON.parse(r.body) } catch {}
  return { status: r.status, json, text: r.body }
}

const bearer = (token: string): string => `Bearer ${token}`

/** The state as configured: weight 100 everywhere, no override, nothing persisted, /api/orders on the new side. */
async function unchanged (t: Test, r: Rig, label: string): Promise<void> {
  const status = await call(r.p, 'GET', '/status')
  t.strictSame(status.json.contexts, [{ name: 'orders', configuredWeight: 100, effectiveWeight: 100, override: null }], `${label}: /status unchanged`)
  t.equal(existsSync(path.join(path.dirname(r.p.file), 'strangler-state.json')), false, `${label}: no override was persisted`)
  t.equal(await whoAnswers(`${r.p.base}/api/orders`), 'new', `${label}: routing unchanged`)
}

const MUTATIONS: Array<[string, string, string?]> = [
  ['POST', '/contexts/orders/rollback'],
  ['PUT', '/contexts/orders/weight', '{"weight":0}'],
  ['DELETE', '/contexts/orders/override'],
  ['POST', '/reload']
]

t.test('no admin route answers on the proxy port: they are proxied to the default upstream, which records them', async t => {
  const r = await rig(t)
  const calls: Array<[string, string, string?]> = [
    ['GET', '/status'], ['GET', '/metrics'], ['GET', '/healthz'], ['GET', '/readyz'], ...MUTATIONS
  ]
  for (const [method, route, body] of calls) {
    const res = await get(`${r.p.base}${route}`, { method, headers: { authorization: bearer(TOKEN), 'content-type': 'application/json' }, body })
    t.equal(res.status, 200, `${method} ${route}`)
    t.strictSame(JSON.parse(res.body), { name: 'legacy', method, url: route }, `${method} ${route}: answered by the default upstream`)
  }
  t.strictSame(r.legacy.seen.map(s => `${s.method} ${s.url}`), calls.map(([m, u]) => `${m} ${u}`), 'the default upstream received each one')
  t.strictSame(r.next.seen, [])
  await unchanged(t, r, 'after admin routes on the proxy port')

  const viaAdmin = await call(r.p, 'GET', '/api/orders')
  t.equal(viaAdmin.status, 404, 'and the admin port proxies nothing')
  t.equal(viaAdmin.json.code, 'STRANGLER_NOT_FOUND')
  t.equal(r.legacy.seen.length + r.next.seen.length, calls.length + 1, 'no upstream saw the admin-port request')
})

t.test('every mutation is refused with 401 without the exact token', async t => {
  const r = await rig(t)
  const refused: Array<[string | undefined, string]> = [
    [undefined, 'no Authorization'],
    [bearer('wrong'), 'a wrong token'],
    [bearer(TOKEN + 'x'), 'one character longer'],
    [bearer(TOKEN.slice(0, -1)), 'one character shorter'],
    [bearer(TOKEN + TOKEN), 'the token twice'],
    [bearer(TOKEN.toLowerCase()), 'lower-cased'],
    [bearer(TOKEN.toUpperCase()), 'upper-cased'],
    [bearer(TOKEN.slice(0, 6) + TOKEN[6].toLowerCase() + TOKEN.slice(7)), 'one letter in another case'],
    [bearer(''), '"Bearer " and nothing'],
    ['Bearer      ', '"Bearer" and spaces only'],
    ['Bearer', '"Bearer" alone'],
    [`Bearer${TOKEN}`, 'no space after Bearer'],
    [`Bearer ${TOKEN.slice(0, 8)} ${TOKEN.slice(8)}`, 'a space inside the token'],
    [`Bearer ${TOKEN} ${TOKEN}`, 'two tokens'],
    [`Bearer ${TOKEN},Bearer wrong`, 'a list'],
    [`Bearer "${TOKEN}"`, 'quoted'],
    [TOKEN, 'the bare token'],
    [`Token ${TOKEN}`, 'another scheme'],
    [`Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`, 'Basic admin:token'],
    [`Basic ${Buffer.from(`${TOKEN}:`).toString('base64')}`, 'Basic token:'],
    [`Basic ${Buffer.from(TOKEN).toString('base64')}`, 'Basic token'],
    [`Bearer ${Buffer.from(TOKEN).toString('base64')}`, 'the token in base64']
  ]
  for (const [method, route, body] of MUTATIONS) {
    for (const [authorization, label] of refused) {
      const res = await call(r.p, method, route, { authorization, body })
      t.strictSame([res.status, res.json?.code], [401, 'STRANGLER_UNAUTHORIZED'], `${method} ${route}, ${label}`)
    }
    const elsewhere = await get(`http://127.0.0.1:${r.p.adminPort}${route}?token=${TOKEN}`, { method, headers: { 'x-admin-token': TOKEN, cookie: `token=${TOKEN}` } })
    t.equal(elsewhere.status, 401, `${method} ${route}: the token in a query, a custom header or a cookie does not count`)
  }
  await unchanged(t, r, 'after every refused mutation')

  // The exact token works, with the scheme in any case and any run of spaces
  // before the token (RFC 9110 §11.4: credentials = auth-scheme 1*SP token68).
  for (const authorization of [bearer(TOKEN), `bearer ${TOKEN}`, `BEARER ${TOKEN}`, `Bearer   ${TOKEN}`]) {
    const rollback = await call(r.p, 'POST', '/contexts/orders/rollback', { authorization })
    t.equal(rollback.status, 200, `accepted: ${JSON.stringify(authorization.replace(TOKEN, '<token>'))}`)
    t.equal((await call(r.p, 'DELETE', '/contexts/orders/override', { authorization })).status, 200)
  }
})

t.test('there are no mutations through GET, HEAD, OPTIONS or PATCH: 404', async t => {
  const r = await rig(t)
  for (const route of ['/contexts/orders/rollback', '/contexts/orders/weight', '/contexts/orders/override', '/reload', '/contexts/orders/weight?weight=0']) {
    for (const method of ['GET', 'OPTIONS', 'PATCH']) {
      const res = await call(r.p, method, route, { authorization: bearer(TOKEN) })
      t.strictSame([res.status, res.json?.code], [404, 'STRANGLER_NOT_FOUND'], `${method} ${route}`)
    }
    const head = await call(r.p, 'HEAD', route, { authorization: bearer(TOKEN) })
    t.strictSame([head.status, head.text], [404, ''], `HEAD ${route}`)
  }
  await unchanged(t, r, 'after GET, HEAD, OPTIONS and PATCH')
})

t.test('a body naming an upstream, or anything but weight, reason and ttl, is refused with 400 and changes nothing', async t => {
  const r = await rig(t)
  const auth = bearer(TOKEN)
  const bodies: Array<[string, string, string]> = [
    ['PUT', '/contexts/orders/weight', '{"weight": 5, "upstream": "evil"}'],
    ['PUT', '/contexts/orders/weight', '{"new": "evil"}'],
    ['PUT', '/contexts/orders/weight', '{"weight": 5, "new": "evil"}'],
    ['PUT', '/contexts/orders/weight', '{"weight": 5, "legacy": "evil"}'],
    ['PUT', '/contexts/orders/weight', '{"weight": 5, "url": "http://evil.example"}'],
    ['PUT', '/contexts/orders/weight', '{"weight": 5, "new": "orders-svc"}'],
    ['PUT', '/contexts/orders/weight', '{"weight": 5, "__proto__": {"upstream": "evil"}}'],
    ['PUT', '/contexts/orders/weight', '{"weight": 5, "constructor": {"prototype": {"upstream": "evil"}}}'],
    ['POST', '/contexts/orders/rollback', '{"upstream": "evil"}'],
    ['POST', '/contexts/orders/rollback', '{"legacy": "evil"}'],
    ['POST', '/contexts/orders/rollback', '{"weight": 100}'],
    ['POST', '/contexts/orders/rollback', '["evil"]'],
    ['POST', '/contexts/orders/rollback', '"evil"']
  ]
  for (const [method, route, body] of bodies) {
    const res = await call(r.p, method, route, { authorization: auth, body })
    t.strictSame([res.status, res.json?.code], [400, 'STRANGLER_BAD_REQUEST'], `${method} ${route} ${body}`)
    t.equal(typeof res.json?.message, 'string')
  }
  await unchanged(t, r, 'after bodies naming upstreams')

  // An upstream's name, or a prototype's, is not a context either.
  for (const name of ['orders-svc', 'monolith', '__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    for (const [method, route, body] of [['POST', `/contexts/${name}/rollback`], ['PUT', `/contexts/${name}/weight`, '{"weight":0}'], ['DELETE', `/contexts/${name}/override`]] as Array<[string, string, string?]>) {
      const res = await call(r.p, method, route, { authorization: auth, body })
      t.strictSame([res.status, res.json?.code], [404, 'STRANGLER_UNKNOWN_CONTEXT'], `${method} ${route}`)
    }
  }
  const traversal = await call(r.p, 'POST', '/contexts/..%2forders/rollback', { authorization: auth })
  t.equal(traversal.status, 404, 'an encoded path in the context name is not a context')
  await unchanged(t, r, 'after unknown contexts')
})

t.test('an oversized body is refused; so is one without the token, before it is read', async t => {
  const r = await rig(t)
  const huge = JSON.stringify({ weight: 5, reason: 'x'.repeat(17 * 1024) })
  const withToken = await call(r.p, 'PUT', '/contexts/orders/weight', { authorization: bearer(TOKEN), body: huge })
  t.equal(withToken.status, 413, 'a body over 16 KiB: 413')
  t.equal(typeof withToken.json?.code, 'string', 'with a JSON error body')
  t.equal(typeof withToken.json?.message, 'string')
  const rollback = await call(r.p, 'POST', '/contexts/orders/rollback', { authorization: bearer(TOKEN), body: JSON.stringify({ reason: 'y'.repeat(1024 * 1024) }) })
  t.equal(rollback.status, 413, 'a 1 MiB rollback body: 413')
  // Authentication comes first: a caller without the token learns nothing
  // from the body's fate and costs no parsing.
  const anonymous = await call(r.p, 'PUT', '/contexts/orders/weight', { body: huge })
  t.strictSame([anonymous.status, anonymous.json?.code], [401, 'STRANGLER_UNAUTHORIZED'], 'without the token, an oversized body is 401')
  await unchanged(t, r, 'after oversized bodies')
})

t.test('invalid JSON is refused with a JSON error body; without the token it is 401', async t => {
  const r = await rig(t)
  for (const body of ['{', '{"weight": 5,}', '{"weight": NaN}', '{"weight": Infinity}', "{'weight': 5}", 'weight=5', '{"weight": 5}}', '\u0000']) {
    const res = await call(r.p, 'PUT', '/contexts/orders/weight', { authorization: bearer(TOKEN), body })
    t.strictSame([res.status, res.json?.code, typeof res.json?.message], [400, 'STRANGLER_BAD_REQUEST', 'string'], JSON.stringify(body))
    const anonymous = await call(r.p, 'PUT', '/contexts/orders/weight', { body })
    t.strictSame([anonymous.status, anonymous.json?.code], [401, 'STRANGLER_UNAUTHORIZED'], `${JSON.stringify(body)} without the token`)
  }
  const text = await call(r.p, 'PUT', '/contexts/orders/weight', { authorization: bearer(TOKEN), body: '5', contentType: 'text/plain' })
  t.strictSame([text.status, text.json?.code, typeof text.json?.message], [400, 'STRANGLER_BAD_REQUEST', 'string'], 'a text/plain body is not an object: 400 with a JSON error body')
  await unchanged(t, r, 'after invalid JSON')
})

t.test('weights are handled exactly: numbers 0–100 with at most two decimals, nothing else', async t => {
  const r = await rig(t)
  const auth = bearer(TOKEN)
  const refused: Array<[string, string]> = [
    ['{"weight": "50"}', 'STRANGLER_BAD_WEIGHT'],
    ['{"weight": "1e2"}', 'STRANGLER_BAD_WEIGHT'],
    ['{"weight": null}', 'STRANGLER_BAD_WEIGHT'],
    ['{"weight": true}', 'STRANGLER_BAD_WEIGHT'],
    ['{"weight": [50]}', 'STRANGLER_BAD_WEIGHT'],
    ['{"weight": {}}', 'STRANGLER_BAD_WEIGHT'],
    ['{}', 'STRANGLER_BAD_WEIGHT'],
    ['{"weight": -0.001}', 'STRANGLER_BAD_WEIGHT'],
    ['{"weight": -1}', 'STRANGLER_BAD_WEIGHT'],
    ['{"weight": 100.001}', 'STRANGLER_BAD_WEIGHT'],
    ['{"weight": 100.01}', 'STRANGLER_BAD_WEIGHT'],
    ['{"weight": 101}', 'STRANGLER_BAD_WEIGHT'],
    ['{"weight": 12.345}', 'STRANGLER_BAD_WEIGHT'],
    ['{"weight": 0.30000000000000004}', 'STRANGLER_BAD_WEIGHT'],
    ['{"weight": 5e-7}', 'STRANGLER_BAD_WEIGHT'],
    ['{"weight": 1e400}', 'STRANGLER_BAD_WEIGHT'],
    ['{"weight": 1e21}', 'STRANGLER_BAD_WEIGHT'],
    ['{"weight": NaN}', 'STRANGLER_BAD_REQUEST']
  ]
  for (const [body, code] of refused) {
    const res = await call(r.p, 'PUT', '/contexts/orders/weight', { authorization: auth, body })
    t.strictSame([res.status, res.json?.code], [400, code], body)
  }
  await unchanged(t, r, 'after refused weights')

  const accepted: Array<[string, number, string]> = [
    ['{"weight": 0.5}', 0.5, 'new or legacy'],
    ['{"weight": 12.34}', 12.34, 'new or legacy'],
    ['{"weight": 1.10}', 1.1, 'new or legacy'],
    ['{"weight": 0.01}', 0.01, 'new or legacy'],
    ['{"weight": 1E1}', 10, 'new or legacy'],
    ['{"weight": -0}', 0, 'legacy'],
    ['{"weight": 0}', 0, 'legacy'],
    ['{"weight": 1e2}', 100, 'new'],
    ['{"weight": 100}', 100, 'new']
  ]
  for (const [body, weight, side] of accepted) {
    const res = await call(r.p, 'PUT', '/contexts/orders/weight', { authorization: auth, body })
    t.strictSame([res.status, res.json?.effectiveWeight, res.json?.override?.weight], [200, weight, weight], body)
    t.match(res.text, `"effectiveWeight":${weight},`, `${body}: the answer spells the weight ${weight}`)
    if (side !== 'new or legacy') t.equal(await whoAnswers(`${r.p.base}/api/orders`), side, `${body}: /api/orders goes to ${side}`)
  }
})
