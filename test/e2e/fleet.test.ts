import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import type { RedisStore } from '../../src/state/redis-store.ts'
import { Strangler, startStrangler } from '../../src/main.ts'
import { admin, configFile, get, quietLog, recordingLog, serveProcess, tally, upstream, whoAnswers } from '../helpers.ts'
import { redisServer } from '../redis.ts'

const TOKEN = 'fleet-token'

/** Two contexts, orders and users, both on new; overrides shared through `redisUrl`. */
function fleetConfig (legacy: string, next: string, redisUrl: string, extra = ''): string {
  return `server:
  listen: 127.0.0.1:0
  admin: 127.0.0.1:0
  adminToken: ${TOKEN}
  state:
    redis: { url: "${redisUrl}", keyPrefix: "test:" }
upstreams:
  monolith: { url: "${legacy}" }
  svc: { url: "${next}" }
default: monolith
contexts:
  orders:
    match: { paths: [/api/orders] }
    legacy: monolith
    new: svc
    weight: 100
${extra}
  users:
    match: { paths: [/api/users] }
    legacy: monolith
    new: svc
    weight: 100
`
}

interface Replica {
  proxy: string
  admin: string
  until: (msg: string) => Promise<Record<string, any>>
  kill: () => void
}

async function replica (t: Test, file: string): Promise<Replica> {
  const p = serveProcess(t, file)
  const listening = await p.until('proxy listening')
  return { proxy: `http://${listening.listen as string}`, admin: `http://${listening.admin as string}`, until: p.until, kill: () => p.child.kill('SIGKILL') }
}

async function call (r: Replica, method: string, route: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await get(`${r.admin}${route}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  return { status: res.status, json: JSON.parse(res.body) }
}

const sides = (replicas: Replica[], path: string): Promise<string[]> => Promise.all(replicas.map(r => whoAnswers(`${r.proxy}${path}`)))

t.test('three replica processes behave as one proxy through Redis', async t => {
  const redis = await redisServer(t)
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const file = configFile(t, fleetConfig(legacy.url, next.url, redis.url))
  const replicas: Replica[] = await Promise.all([replica(t, file), replica(t, file), replica(t, file)])
  t.same(await sides(replicas, '/api/orders'), ['new', 'new', 'new'])

  const rollback = await call(replicas[0], 'POST', '/contexts/orders/rollback', { reason: 'orders-svc 5xx' })
  t.equal(rollback.status, 200)
  t.equal(rollback.json.warning, undefined, 'every replica confirmed before the call returned')
  t.same(await sides(replicas, '/api/orders'), ['legacy', 'legacy', 'legacy'], 'all three on their next request')
  for (const r of replicas) {
    const status = (await call(r, 'GET', '/status')).json
    t.same(status.contexts[0].override, { ...rollback.json.override }, 'the same override everywhere')
    t.same(status.state, { store: `${redis.url} (keys test:*)`, shared: true, up: true, lastError: null })
  }

  const late = await replica(t, file)
  t.equal(await whoAnswers(`${late.proxy}/api/orders`), 'legacy', 'a replica started after the rollback starts rolled back')
  replicas.push(late)

  // A stale message (an older version clearing the rollback) and a repeated one
  // arrive before a newer change of users: once every replica confirmed that
  // one, it has handled both, and neither undid the rollback.
  const client = redis.client()
  const stored = JSON.parse(await client.hget('test:overrides', 'orders') as string)
  await client.publish('test:changes', JSON.stringify({ name: 'orders', entry: { version: stored.version - 1, override: null } }))
  await client.publish('test:changes', JSON.stringify({ name: 'orders', entry: stored }))
  const users = await call(replicas[1], 'PUT', '/contexts/users/weight', { weight: 0 })
  t.equal(users.status, 200)
  t.equal(users.json.warning, undefined)
  t.same(await sides(replicas, '/api/orders'), ['legacy', 'legacy', 'legacy', 'legacy'], 'the stale message changed nothing')
  t.same(await sides(replicas, '/api/users'), ['legacy', 'legacy', 'legacy', 'legacy'])

  // Two operators at once, through two replicas: every replica ends with the one Redis ordered last.
  await Promise.all([
    call(replicas[0], 'PUT', '/contexts/users/weight', { weight: 30 }),
    call(replicas[2], 'PUT', '/contexts/users/weight', { weight: 70 })
  ])
  const final = JSON.parse(await client.hget('test:overrides', 'users') as string).override.weight
  t.ok(final === 30 || final === 70)
  for (const r of replicas) t.equal((await call(r, 'GET', '/status')).json.contexts[1].effectiveWeight, final, 'the same final weight on every replica')

  // Redis goes away: every replica keeps serving what it knows; changes are refused.
  await redis.stop()
  await Promise.all(replicas.map(r => r.until('shared state store unreachable: serving with the last known overrides; admin changes are refused until it is back')))
  t.same(await sides(replicas, '/api/orders'), ['legacy', 'legacy', 'legacy', 'legacy'], 'still rolled back')
  for (const r of replicas) {
    t.equal((await get(`${r.admin}/readyz`)).status, 200, 'still ready')
    t.match((await get(`${r.admin}/metrics`)).body, /^strangler_state_store_up 0$/m)
    t.equal((await call(r, 'GET', '/status')).json.state.up, false)
  }
  const refused = await call(replicas[3], 'DELETE', '/contexts/orders/override')
  t.equal(refused.status, 503)
  t.equal(refused.json.code, 'STRANGLER_STATE_STORE_DOWN')
  t.match(refused.json.message, /^Not applied on any replica: the shared state store unix:\/\/.* is unreachable/)
  t.equal((await call(replicas[0], 'PUT', '/contexts/orders/weight', { weight: 50 })).status, 503)
  t.same(await sides(replicas, '/api/orders'), ['legacy', 'legacy', 'legacy', 'legacy'], 'a refused change applied nowhere')

  // Redis comes back empty: the replicas put their state back, and changes flow again.
  await redis.start()
  await Promise.all(replicas.map(r => r.until('resynchronised with the shared state store')))
  const back = redis.client()
  t.equal(JSON.parse(await back.hget('test:overrides', 'orders') as string).override.weight, 0, 'the rollback is in Redis again')
  for (const r of replicas) t.match((await get(`${r.admin}/metrics`)).body, /^strangler_state_store_up 1$/m)
  const cleared = await call(replicas[3], 'DELETE', '/contexts/orders/override')
  t.equal(cleared.status, 200)
  t.equal(cleared.json.warning, undefined)
  t.same(await sides(replicas, '/api/orders'), ['new', 'new', 'new', 'new'])
})

t.test('a guard judges the traffic of the whole fleet and trips once for all of it', async t => {
  const redis = await redisServer(t)
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new', (_req, res) => { res.writeHead(500); res.end('{}') })
  let now = Date.parse('2026-11-24T00:00:00Z')
  const clock = { now: () => now }
  const file = configFile(t, fleetConfig(legacy.url, next.url, redis.url, '    guard: { maxErrorRateDelta: 5, minRequests: 20, window: 1m }'))
  const start = (): Promise<Strangler> => startStrangler({ configFile: file, env: {}, log: quietLog, watch: false, processMetrics: false, clock })
  const [a, b] = await Promise.all([start(), start()])
  t.teardown(async () => { await Promise.all([a.close(), b.close()]) })
  // The ticks below are the only ones: a timer's tick between two of B's 12 answers judged 12 + 11 and tripped at 23.
  a.safety.stop()
  b.safety.stop()
  // 12 failures on each: under minRequests for either replica alone, over it together.
  t.same(await tally(`http://127.0.0.1:${a.proxyPort}/api/orders`, 12), { 'status 500': 12 })
  t.same(await tally(`http://127.0.0.1:${b.proxyPort}/api/orders`, 12), { 'status 500': 12 })
  now += 1000
  await a.safety.tick()
  await b.safety.tick()
  await a.safety.tick()
  t.equal([a, b].filter(s => s.safety.leader).length, 1, 'one replica decides')
  const decider = a.safety.leader ? a : b
  t.match(decider.overrides.get('orders')?.reason, /^guard: new answered 5xx \(or fell back\) on 100% of 24 requests vs 0% on legacy/)
  for (const s of [a, b]) {
    t.equal(s.overrides.get('orders')?.by, 'guard')
    t.same(await tally(`http://127.0.0.1:${s.proxyPort}/api/orders`, 10), { legacy: 10 })
  }
  t.equal(Number((await admin(a, 'GET', '/metrics')).text.match(/^strangler_guard_trips_total\{context="orders"\} (\d+)$/m)?.[1] ?? 0) +
    Number((await admin(b, 'GET', '/metrics')).text.match(/^strangler_guard_trips_total\{context="orders"\} (\d+)$/m)?.[1] ?? 0), 1, 'one trip for the fleet')
})

t.test('the YAML wins over overrides made before the fleet first ran it, on every replica, whichever file each runs', async t => {
  const redis = await redisServer(t)
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const v1 = fleetConfig(legacy.url, next.url, redis.url)
  const v2 = v1.replace('weight: 100\n\n  users', 'weight: 90\n\n  users')
  t.not(v1, v2)
  const fileA = configFile(t, v1)
  const fileB = configFile(t, v1)
  const start = (file: string): Promise<Strangler> => startStrangler({ configFile: file, env: {}, log: quietLog, watch: false, processMetrics: false })
  const [a, b] = await Promise.all([start(fileA), start(fileB)])
  t.teardown(async () => { await Promise.all([a.close(), b.close()]) })
  const rollback = (s: Strangler): Promise<{ status: number }> => admin(s, 'POST', '/contexts/orders/rollback', { token: TOKEN })
  const effective = (s: Strangler): number | undefined => s.overrides.get('orders')?.weight

  // A rollback made under v1, then the fleet moves to v2: the YAML wins on both.
  t.equal((await rollback(a)).status, 200)
  writeFileSync(fileA, v2)
  t.same(await a.reload('admin'), { ok: true, changed: true, hash: a.config.hash })
  t.equal(effective(a), undefined, 'cleared where v2 runs')
  t.equal(effective(b), 0, 'kept where v1 still runs')
  writeFileSync(fileB, v2)
  await b.reload('admin')
  t.equal(effective(b), undefined, 'cleared once v2 runs there too')

  // Back to v1 on A only (a revert), then a rollback through B, which still runs v2:
  // it is newer than the moment the fleet first ran each file, so it holds on both.
  writeFileSync(fileA, v1)
  await a.reload('admin')
  t.equal((await rollback(b)).status, 200)
  t.equal(effective(a), 0, 'holds on the replica running the other file')
  t.equal(effective(b), 0)
  writeFileSync(fileB, v1)
  await b.reload('admin')
  t.equal(effective(b), 0, 'still holds after B catches up: the fleet ran v1 before the rollback')
  t.same(await tally(`http://127.0.0.1:${b.proxyPort}/api/orders`, 10), { legacy: 10 })
})

t.test('a fleet override whose context disappears stays dormant, applies again when the same YAML comes back, and loses to another YAML', async t => {
  const redis = await redisServer(t)
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const v1 = fleetConfig(legacy.url, next.url, redis.url)
  const orders = '  orders:\n    match: { paths: [/api/orders] }\n    legacy: monolith\n    new: svc\n    weight: 100\n'
  t.ok(v1.includes(orders))
  const fileA = configFile(t, v1)
  const fileB = configFile(t, v1)
  const start = (file: string): Promise<Strangler> => startStrangler({ configFile: file, env: {}, log: quietLog, watch: false, processMetrics: false })
  const [a, b] = await Promise.all([start(fileA), start(fileB)])
  t.teardown(async () => { await Promise.all([a.close(), b.close()]) })
  t.equal((await admin(a, 'POST', '/contexts/orders/rollback', { token: TOKEN, body: { reason: 'INC-3' } })).status, 200)

  writeFileSync(fileA, v1.replace(orders, ''))
  t.equal((await a.reload('admin')).ok, true)
  t.match((await admin(a, 'GET', '/status')).json.dormantOverrides, [{ context: 'orders', weight: 0, reason: 'INC-3' }], 'dormant where orders is gone')
  t.equal(b.overrides.get('orders')?.reason, 'INC-3', 'in force where it is not')
  t.match(JSON.parse(await redis.client().hget('test:overrides', 'orders') as string).override, { weight: 0, reason: 'INC-3' }, 'still in Redis')

  writeFileSync(fileA, v1)
  t.equal((await a.reload('admin')).ok, true)
  t.equal(a.overrides.get('orders')?.reason, 'INC-3', 'in force again with the same YAML')
  t.same(a.overrides.dormant(), [])
  t.same(await tally(`http://127.0.0.1:${a.proxyPort}/api/orders`, 10), { legacy: 10 })

  writeFileSync(fileA, v1.replace(orders, ''))
  t.equal((await a.reload('admin')).ok, true)
  writeFileSync(fileA, v1.replace(orders, orders.replace('weight: 100', 'weight: 90')))
  t.equal((await a.reload('admin')).ok, true)
  t.equal(a.overrides.get('orders'), null, 'another YAML: the YAML wins')
  t.same(a.overrides.dormant(), [])
})

t.test('with Redis down a guard rolls back its own replica, and the trip reaches the fleet when Redis is back', async t => {
  const redis = await redisServer(t)
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new', (_req, res) => { res.writeHead(500); res.end('{}') })
  const clock = { now: () => Date.parse('2026-11-24T00:00:00Z') }
  const file = configFile(t, fleetConfig(legacy.url, next.url, redis.url, '    guard: { maxErrorRateDelta: 5, minRequests: 20, window: 1m }'))
  const start = (): Promise<Strangler> => startStrangler({ configFile: file, env: {}, log: quietLog, watch: false, processMetrics: false, clock })
  const [a, b] = await Promise.all([start(), start()])
  t.teardown(async () => { await Promise.all([a.close(), b.close()]) })
  const stores = [a, b].map(s => s.overrides.store as RedisStore)
  const down = Promise.all(stores.map(s => once(s, 'down')))
  await redis.stop()
  await down

  t.same(await tally(`http://127.0.0.1:${a.proxyPort}/api/orders`, 20), { 'status 500': 20 })
  await a.safety.tick()
  await b.safety.tick()
  t.equal(a.overrides.get('orders')?.by, 'guard', 'A judged its own traffic and rolled back')
  t.equal(b.overrides.get('orders'), null, 'B had no failures of its own')
  t.same(await tally(`http://127.0.0.1:${a.proxyPort}/api/orders`, 5), { legacy: 5 })

  const up = Promise.all(stores.map(s => once(s, 'up')))
  await redis.start()
  await up
  await Promise.all([a.overrides.resync(), b.overrides.resync()])
  await b.overrides.resync()
  t.equal(b.overrides.get('orders')?.by, 'guard', 'the trip reached B')
  t.same(await tally(`http://127.0.0.1:${b.proxyPort}/api/orders`, 5), { legacy: 5 })
  const stored = JSON.parse(await redis.client().hget('test:overrides', 'orders') as string)
  t.equal(stored.override.by, 'guard')
  t.ok(Number.isInteger(stored.version), 'stored with a version from Redis')
})

t.test('garbage in Redis or on its channel is ignored with a warning; the replica keeps serving and changing', async t => {
  const redis = await redisServer(t)
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const client = redis.client()
  await client.hset('test:overrides', 'orders', 'not json', 'users', JSON.stringify({ version: 3, override: { weight: 'zero' } }))
  const { log, lines } = recordingLog()
  const file = configFile(t, fleetConfig(legacy.url, next.url, redis.url))
  const s = await startStrangler({ configFile: file, env: {}, log, watch: false, processMetrics: false })
  t.teardown(() => s.close())
  t.same(lines.filter(l => l.msg === 'ignored a malformed override in the shared store').map(l => l.context).sort(), ['orders', 'users'])
  t.same(s.overrides.all(), {}, 'nothing malformed applies')
  for (const message of ['{', 'null', '"x"', JSON.stringify({ name: 'orders', entry: { version: 99, override: { weight: 0 } } }), JSON.stringify({ name: 7, entry: null })]) {
    await client.publish('test:changes', message)
  }
  const rolled = await admin(s, 'POST', '/contexts/orders/rollback', { token: TOKEN })
  t.equal(rolled.status, 200, 'a valid change after the garbage')
  t.equal(lines.filter(l => l.msg === 'ignored a malformed message on the state channel').length, 5, 'each malformed message was read and ignored')
  t.equal(await whoAnswers(`http://127.0.0.1:${s.proxyPort}/api/orders`), 'legacy')
  t.equal(await whoAnswers(`http://127.0.0.1:${s.proxyPort}/api/users`), 'new')
})
