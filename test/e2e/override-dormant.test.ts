import { once } from 'node:events'
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { configHash } from '../../src/config/hash.ts'
import { Strangler, type ReloadResult, startStrangler } from '../../src/main.ts'
import { admin, proxy, quietLog, tally, upstream, type NamedUpstream } from '../helpers.ts'

const TOKEN = 'dormant-token'

/** Two contexts on new, orders then carts: the text before `  carts:` is a valid config without carts. */
function twoContexts (legacy: string, next: string, cartsWeight = 100): string {
  return `server:
  listen: 127.0.0.1:0
  admin: 127.0.0.1:0
  adminToken: ${TOKEN}
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
  carts:
    match: { paths: [/api/carts] }
    legacy: monolith
    new: svc
    weight: ${cartsWeight}
`
}

function withoutCarts (yaml: string): string {
  return yaml.slice(0, yaml.indexOf('  carts:'))
}

/** Resolves with the first reload that put (or found) `hash` in force. */
function reloadedTo (p: Strangler, hash: string): Promise<void> {
  return new Promise(resolve => {
    const listener = (r: ReloadResult): void => {
      if (!r.ok || r.hash !== hash) return
      p.off('reload', listener)
      resolve()
    }
    p.on('reload', listener)
  })
}

function stateFile (p: { file: string }): Record<string, { weight: number; reason: string }> {
  return JSON.parse(readFileSync(path.join(path.dirname(p.file), 'strangler-state.json'), 'utf8')).overrides
}

async function sides (t: Test) {
  return { legacy: await upstream(t, 'legacy'), next: await upstream(t, 'new') }
}

/** carts rolled back, then removed from the YAML by a valid reload: its override is dormant. */
async function rolledBackThenRemoved (t: Test): Promise<{ legacy: NamedUpstream; next: NamedUpstream; yaml: string; p: Awaited<ReturnType<typeof proxy>> }> {
  const { legacy, next } = await sides(t)
  const yaml = twoContexts(legacy.url, next.url)
  const p = await proxy(t, yaml)
  t.equal((await admin(p, 'POST', '/contexts/carts/rollback', { token: TOKEN })).status, 200)
  writeFileSync(p.file, withoutCarts(yaml))
  t.equal((await p.reload('admin')).ok, true)
  return { legacy, next, yaml, p }
}

t.test('a rollback survives the config file being rewritten in place with a pause in the middle', async t => {
  const { legacy, next } = await sides(t)
  const yaml = twoContexts(legacy.url, next.url)
  const p = await proxy(t, yaml, { watch: true })
  const rolled = await admin(p, 'POST', '/contexts/carts/rollback', { token: TOKEN, body: { reason: 'INC-7 carts 5xx' } })
  t.equal(rolled.status, 200)
  t.same(await tally(`${p.base}/api/carts`, 10), { legacy: 10 })

  // scp, rsync --inplace and some editors: truncate, write part of the file, pause, write the rest
  const half = withoutCarts(yaml)
  const halfLoaded = reloadedTo(p, configHash(half))
  const fd = openSync(p.file, 'w')
  writeSync(fd, half)
  await Promise.all([sleep(500), halfLoaded])
  const during = await admin(p, 'GET', '/status')
  t.same(during.json.contexts.map((c: { name: string }) => c.name), ['orders'], 'the first half was loaded: carts is gone for now')
  t.match(during.json.dormantOverrides, [{ context: 'carts', weight: 0, reason: 'INC-7 carts 5xx', by: 'admin' }], 'its rollback is dormant, not dropped')
  t.equal(stateFile(p).carts?.weight, 0, 'and still on disk')
  const whole = reloadedTo(p, configHash(yaml))
  writeSync(fd, yaml.slice(half.length))
  closeSync(fd)
  await whole

  t.same(await tally(`${p.base}/api/carts`, 20), { legacy: 20 }, 'carts still goes to legacy')
  t.same(await tally(`${p.base}/api/orders`, 10), { new: 10 })
  const status = await admin(p, 'GET', '/status')
  t.match(status.json.contexts.find((c: { name: string }) => c.name === 'carts'), { configuredWeight: 100, effectiveWeight: 0, override: { weight: 0, reason: 'INC-7 carts 5xx' } })
  t.same(status.json.dormantOverrides, [])
  t.match(stateFile(p), { carts: { weight: 0, reason: 'INC-7 carts 5xx' } })
})

t.test('an override whose context is removed stays dormant, across a restart, and applies again when the same YAML comes back', async t => {
  const { legacy, next } = await sides(t)
  const yaml = twoContexts(legacy.url, next.url)
  const p = await proxy(t, yaml)
  t.equal((await admin(p, 'POST', '/contexts/carts/rollback', { token: TOKEN, body: { reason: 'INC-8' } })).status, 200)

  writeFileSync(p.file, withoutCarts(yaml))
  t.equal((await p.reload('admin')).ok, true)
  const status = await admin(p, 'GET', '/status')
  t.same(status.json.dormantOverrides, [{ context: 'carts', weight: 0, reason: 'INC-8', by: 'admin', at: p.overrides.dormant()[0]?.at, expiresAt: null }])
  t.equal(stateFile(p).carts?.weight, 0, 'still on disk')
  t.same(await tally(`${p.base}/api/carts`, 5), { legacy: 5 }, 'unmatched: the default upstream')

  // the dormant override is restored at start like any other
  await p.close()
  const again = await startStrangler({ configFile: p.file, env: {}, log: quietLog, watch: false, processMetrics: false })
  t.teardown(() => again.close())
  t.equal(again.overrides.dormant()[0]?.reason, 'INC-8', 'dormant after a restart')
  writeFileSync(p.file, yaml)
  t.equal((await again.reload('admin')).ok, true)
  t.equal(again.overrides.get('carts')?.reason, 'INC-8', 'in force again: the context came back with the same YAML')
  t.same(await tally(`http://127.0.0.1:${again.proxyPort}/api/carts`, 10), { legacy: 10 })
  t.same(again.overrides.dormant(), [])
})

t.test('a dormant override is dropped when its context comes back with another YAML', async t => {
  const { legacy, next, yaml, p } = await rolledBackThenRemoved(t)
  t.equal(p.overrides.dormant().length, 1)

  writeFileSync(p.file, twoContexts(legacy.url, next.url, 90))
  t.equal((await p.reload('admin')).ok, true)
  t.equal(p.overrides.get('carts'), null, 'the YAML wins')
  t.same(p.overrides.dormant(), [])
  t.same(stateFile(p), {}, 'dropped from disk')
  writeFileSync(p.file, yaml)
  t.equal((await p.reload('admin')).ok, true)
  t.equal(p.overrides.get('carts'), null, 'and it stays dropped when the first YAML comes back')
  t.same(await tally(`${p.base}/api/carts`, 10), { new: 10 })
})

t.test('an operator clears a dormant override through the API', async t => {
  const { yaml, p } = await rolledBackThenRemoved(t)

  const cleared = await admin(p, 'DELETE', '/contexts/carts/override', { token: TOKEN })
  t.equal(cleared.status, 200)
  t.same(cleared.json, { name: 'carts', override: null, persisted: true })
  t.same((await admin(p, 'GET', '/status')).json.dormantOverrides, [])
  t.same(stateFile(p), {})
  const again = await admin(p, 'DELETE', '/contexts/carts/override', { token: TOKEN })
  t.equal(again.status, 404)
  t.equal(again.json.code, 'STRANGLER_UNKNOWN_CONTEXT')

  writeFileSync(p.file, yaml)
  t.equal((await p.reload('admin')).ok, true)
  t.equal(p.overrides.get('carts'), null)
  t.same(await tally(`${p.base}/api/carts`, 10), { new: 10 })
})

t.test('a dormant override lapses at its ttl', async t => {
  const { legacy, next } = await sides(t)
  const yaml = twoContexts(legacy.url, next.url)
  const p = await proxy(t, yaml)
  const lapsed = once(p.overrides, 'dropped')
  t.equal((await admin(p, 'POST', '/contexts/carts/rollback', { token: TOKEN, body: { ttl: '400ms' } })).status, 200)
  writeFileSync(p.file, withoutCarts(yaml))
  t.equal((await p.reload('admin')).ok, true)
  t.equal(p.overrides.dormant().length, 1)
  t.same(await lapsed, ['carts'])
  t.same(p.overrides.dormant(), [])
  t.same(stateFile(p), {}, 'dropped from disk')
  writeFileSync(p.file, yaml)
  t.equal((await p.reload('admin')).ok, true)
  t.equal(p.overrides.get('carts'), null)
})
