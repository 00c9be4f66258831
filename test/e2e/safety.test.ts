import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { Strangler, startStrangler } from '../../src/main.ts'
import { admin, proxy, quietLog, routes, tally, tempDir, upstream } from '../helpers.ts'

/** A clock the test moves by hand. */
function fakeClock (): { now: () => number; advance: (ms: number) => void } {
  let now = Date.parse('2026-11-24T00:00:00Z')
  return { now: () => now, advance: ms => { now += ms } }
}

const failing = (status: number) => (_req: unknown, res: { writeHead: (s: number) => void; end: (b: string) => void }) => { res.writeHead(status); res.end('{}') }

t.test('the guard rolls a context back when new errs more than legacy, with the numbers in the reason', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new', failing(500))
  const clock = fakeClock()
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 50, extra: '    guard: { maxErrorRateDelta: 5, minRequests: 20, window: 1m }' }), { clock, processMetrics: false })
  const counts = await tally(`${p.base}/api/orders`, 200)
  t.ok(counts['status 500'] >= 20, `new answered 500 to ${counts['status 500']} requests`)
  await p.safety.tick()
  const o = p.overrides.get('orders')
  t.equal(o?.weight, 0)
  t.equal(o?.by, 'guard')
  t.match(o?.reason, /^guard: new answered 5xx \(or fell back\) on 100% of \d+ requests vs 0% on legacy, 100 points above \(limit 5\)$/)
  t.same(await tally(`${p.base}/api/orders`, 50), { legacy: 50 }, 'rolled back on the next request')
  const status = (await admin(p, 'GET', '/status')).json.contexts[0]
  t.equal(status.guard.tripped, true)
  t.equal(status.effectiveWeight, 0)
  t.match((await admin(p, 'GET', '/metrics')).text, /^strangler_guard_trips_total\{context="orders"\} 1$/m)
  await p.safety.tick()
  t.equal(p.overrides.get('orders')?.by, 'guard', 'it stays until an operator clears it')
})

t.test('the guard holds when both sides fail alike, and below minRequests', async t => {
  const legacy = await upstream(t, 'legacy', failing(503))
  const next = await upstream(t, 'new', failing(503))
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 50, extra: '    guard: { maxErrorRateDelta: 5, minRequests: 20 }' }), { clock: fakeClock(), processMetrics: false })
  await tally(`${p.base}/api/orders`, 200)
  await p.safety.tick()
  t.equal(p.overrides.get('orders'), null, 'an outage of everything is not a reason to roll back')

  const ok = await upstream(t, 'legacy')
  const bad = await upstream(t, 'new', failing(500))
  const q = await proxy(t, routes({ legacy: ok.url, new: bad.url, weight: 100, extra: '    guard: { minRequests: 20 }' }), { clock: fakeClock(), processMetrics: false })
  await tally(`${q.base}/api/orders`, 19, () => ({}), 1)
  await q.safety.tick()
  t.equal(q.overrides.get('orders'), null, 'not enough requests to judge')
})

t.test('a ramp advances on schedule, stops at a guard trip, and resumes from its step after a restart', async t => {
  const legacy = await upstream(t, 'legacy')
  let newFails = false
  const next = await upstream(t, 'new', (req, res) => {
    if (newFails) return failing(500)(req, res)
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ name: 'new' }))
  })
  const dir = tempDir(t)
  const file = path.join(dir, 'routes.yaml')
  writeFileSync(file, routes({ legacy: legacy.url, new: next.url, weight: 0, extra: '    ramp: { steps: [10, 50, 100], every: 10m }\n    guard: { minRequests: 20 }' }))
  const clock = fakeClock()
  const start = (): Promise<Strangler> => startStrangler({ configFile: file, env: {}, log: quietLog, watch: false, processMetrics: false, clock })
  const first = await start()
  t.equal(first.overrides.get('orders')?.weight, 10, 'step 1 at start')
  t.same((await admin(first, 'GET', '/status')).json.contexts[0].ramp, { step: 1, of: 3, weight: 10, nextAt: '2026-11-24T00:10:00.000Z' })
  clock.advance(9 * 60_000)
  await first.safety.tick()
  t.equal(first.overrides.get('orders')?.weight, 10, 'not yet due')
  clock.advance(60_000)
  await first.safety.tick()
  t.equal(first.overrides.get('orders')?.weight, 50, 'step 2 when due')
  await first.close()

  const second = await start()
  t.teardown(() => second.close())
  t.equal(second.overrides.get('orders')?.weight, 50, 'the restart resumes at step 2')
  t.equal(second.overrides.get('orders')?.ramp?.step, 1)
  newFails = true
  clock.advance(10 * 60_000)
  await tally(`http://127.0.0.1:${second.proxyPort}/api/orders`, 120)
  await second.safety.tick()
  t.equal(second.overrides.get('orders')?.by, 'guard', 'the guard tripped instead of the ramp advancing')
  t.equal(second.overrides.get('orders')?.weight, 0)
  clock.advance(60 * 60_000)
  await second.safety.tick()
  t.equal(second.overrides.get('orders')?.weight, 0, 'a tripped ramp stays stopped')
})

t.test('guard and ramp are refused with workers', async t => {
  const { parseConfig, formatIssue } = await import('../../src/config/index.ts')
  const r = parseConfig(routes({ legacy: 'http://a.internal', new: 'http://b.internal', weight: 0, server: '  workers: 2', extra: '    guard: {}' }), 'w.yaml', { env: {}, unsetVars: 'error' })
  t.same(r.errors.map(formatIssue), ['w.yaml:19:5 guard needs one process to judge all traffic: it does not work with server.workers > 1 yet'])
})
