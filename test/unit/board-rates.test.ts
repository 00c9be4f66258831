import t from 'tap'
import { LiveRates, quantile, ratesBetween, sampleOf, type MetricFamily } from '../../src/admin/board/rates.ts'
import { Metrics } from '../../src/metrics.ts'

const round = (n: number | null): number | null => n === null ? null : Math.round(n * 1e9) / 1e9

function repeat (n: number, fn: () => void): void {
  for (let i = 0; i < n; i++) fn()
}

t.test('quantile: linear inside the bucket the rank falls in, the highest finite bound in +Inf', async t => {
  const bounds = [0.01, 0.1, 1, Infinity]
  t.equal(quantile(0.99, bounds, [0, 0, 0, 0]), null, 'no observations')
  t.equal(round(quantile(0.99, bounds, [100, 100, 100, 100])), 0.0099, 'first bucket: from 0 to its bound')
  t.equal(round(quantile(0.99, bounds, [98, 100, 100, 100])), 0.055, 'rank 99 is the first of the two in (0.01, 0.1]')
  t.equal(round(quantile(0.5, bounds, [0, 50, 100, 100])), 0.1)
  t.equal(quantile(0.99, bounds, [50, 50, 50, 100]), 1, 'in +Inf: the highest finite bound')
  t.equal(quantile(0.99, [Infinity], [3]), null, 'only +Inf: no bound to give')
})

t.test('a sample reads requests, 5xx, latency buckets, fallbacks, shadow results and reloads from the registry', async t => {
  const m = new Metrics({ processMetrics: false })
  m.response('orders', 'new', 200, 0.02)
  m.response('orders', 'new', 503, 0.2)
  m.response('orders', 'legacy', 404, 0.004)
  m.fallback('orders', 'refused')
  m.fallback('orders', '5xx')
  repeat(3, () => m.shadowResult('orders', 'match'))
  m.shadowResult('orders', 'mismatch')
  repeat(2, () => m.shadowResult('orders', 'noisy'))
  m.shadowResult('orders', 'error')
  m.reloads.labels('failure').inc()
  const s = sampleOf(await m.registry.getMetricsAsJSON(), 1234)
  t.equal(s.at, 1234)
  t.strictSame(s.bounds, [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, Infinity])
  t.strictSame(s.sides.get('orders\0new'), { requests: 2, errors: 1, buckets: [0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2] })
  t.strictSame(s.sides.get('orders\0legacy'), { requests: 1, errors: 0, buckets: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1] })
  t.strictSame([...s.fallbacks], [['orders', 2]])
  t.strictSame([...s.shadow], [['orders', { match: 3, mismatch: 1, noisy: 2 }]], 'errors and drops are not comparisons; noisy ones are')
  t.strictSame(s.reloads, { success: 0, failure: 1 })
})

t.test('rates between two samples: per second, 5xx in percent of each side\'s answers, fallbacks in percent of what was sent to new, p99 from the bucket deltas', async t => {
  const m = new Metrics({ processMetrics: false })
  repeat(10, () => m.response('orders', 'new', 500, 20))
  const before = sampleOf(await m.registry.getMetricsAsJSON(), 10_000)
  repeat(94, () => m.response('orders', 'new', 200, 0.004))
  repeat(6, () => m.response('orders', 'new', 502, 0.07))
  repeat(25, () => m.fallback('orders', 'timeout'))
  repeat(20, () => m.response('orders', 'legacy', 200, 0.3))
  repeat(8, () => m.response('default', 'legacy', 404, 0.001))
  const after = sampleOf(await m.registry.getMetricsAsJSON(), 14_000)
  const r = ratesBetween(before, after)
  t.equal(r.seconds, 4)
  const orders = r.contexts.get('orders')
  t.equal(orders?.new.rps, 25, '100 answers in 4 s; what came before the window does not count')
  t.equal(orders?.new.errorRate, 6, '6 answers of 502 out of 100: a fallback is not a 5xx of new')
  t.equal(orders?.new.fallbackRate, 20, '25 fallbacks out of the 125 requests sent to new')
  t.equal(round(orders?.new.p99 ?? null), 0.091666667, 'rank 99 of 100: 94 under 5 ms, 6 in (50 ms, 100 ms]')
  t.strictSame(orders?.legacy, { rps: 5, errorRate: 0, p99: 0.4975, fallbackRate: null }, 'legacy has no fallback rate')
  t.strictSame(r.contexts.get('default'), { legacy: { rps: 2, errorRate: 0, p99: 0.00495, fallbackRate: null }, new: { rps: 0, errorRate: null, p99: null, fallbackRate: null } })
  t.equal(r.rps, 32)
  t.equal(r.newRps, 25)
})

t.test('a dead new service behind fallback: no answers from new, every request sent to it fell back', async t => {
  const m = new Metrics({ processMetrics: false })
  const before = sampleOf(await m.registry.getMetricsAsJSON(), 0)
  repeat(30, () => {
    m.upstreamError('orders', 'new', 'refused')
    m.fallback('orders', 'refused')
    m.response('orders', 'legacy', 200, 0.01)
  })
  const r = ratesBetween(before, sampleOf(await m.registry.getMetricsAsJSON(), 3000))
  t.strictSame(r.contexts.get('orders')?.new, { rps: 0, errorRate: null, p99: null, fallbackRate: 100 })
  t.equal(r.contexts.get('orders')?.legacy.rps, 10)
})

t.test('a counter that went down was reset (a replaced worker): it counts from zero', async t => {
  const families = (requests: number, fallbacks: number): MetricFamily[] => [
    { name: 'strangler_requests_total', values: [{ value: requests, labels: { context: 'orders', side: 'new', code: '2xx' } }] },
    { name: 'strangler_fallbacks_total', values: [{ value: fallbacks, labels: { context: 'orders', reason: 'reset' } }] }
  ]
  const r = ratesBetween(sampleOf(families(50, 9), 0), sampleOf(families(10, 0), 2000))
  t.strictSame(r.contexts.get('orders')?.new, { rps: 5, errorRate: 0, p99: null, fallbackRate: 0 })
})

t.test('live rates: no window on the first read, one snapshot per second at most, a window that slides', async t => {
  const m = new Metrics({ processMetrics: false })
  let now = 0
  let collected = 0
  const live = new LiveRates(async () => {
    collected++
    return await m.registry.getMetricsAsJSON()
  }, 10_000, () => now)

  const first = await live.read()
  t.equal(first.window, null)
  t.equal(collected, 1)
  now = 900
  t.equal((await live.read()).latest, first.latest, 'within a second: the same snapshot')
  t.equal(collected, 1)

  repeat(10, () => m.response('orders', 'new', 200, 0.01))
  now = 2000
  const second = await live.read()
  t.equal(second.window?.seconds, 2)
  t.equal(second.window?.contexts.get('orders')?.new.rps, 5)

  repeat(30, () => m.response('orders', 'new', 200, 0.01))
  now = 12_000
  const third = await live.read()
  t.equal(third.window?.seconds, 10, 'the snapshot at 0 left the 10 s window; the one at 2 s is its start')
  t.equal(third.window?.contexts.get('orders')?.new.rps, 3)

  now = 30_000
  t.equal((await live.read()).window, null, 'after a long pause the window starts again')

  now = 31_000
  const both = await Promise.all([live.read(), live.read()])
  t.equal(both[0].latest, both[1].latest, 'two boards at once: one snapshot')
  t.equal(collected, 5)
})

t.test('live rates: a snapshot that took long spaces the next ones out, to at most a tenth of the time', async t => {
  let now = 0
  let collected = 0
  const live = new LiveRates(async () => {
    collected++
    now += 400
    return []
  }, 10_000, () => now)
  await live.read()
  t.equal(now, 400)
  now = 3900
  await live.read()
  t.equal(collected, 1, '400 ms of work: nothing new for 4 s')
  now = 4000
  await live.read()
  t.equal(collected, 2)
})
