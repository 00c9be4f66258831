import { AggregatorRegistry } from 'prom-client'
import t from 'tap'
import { sampleOf, type MetricFamily } from '../../src/admin/board/rates.ts'
import { mergeRows, Metrics } from '../../src/metrics.ts'

async function textOf (m: Metrics): Promise<string> {
  let text = ''
  for await (const piece of m.text()) text += piece
  return text
}

function filled (contexts: number): Metrics {
  const m = new Metrics({ processMetrics: false })
  const weights = Array.from({ length: contexts }, (_, i) => ({ context: `c${i}`, configured: 25, effective: i % 2 === 0 ? 0 : 25, overridden: i % 2 === 0 }))
  m.exportWeights(() => weights)
  for (let i = 0; i < contexts; i++) {
    m.response(`c${i}`, 'legacy', 200, 0.003)
    m.response(`c${i}`, 'new', i % 3 === 0 ? 503 : 201, i % 5 === 0 ? 45 : 0.2)
  }
  return m
}

t.test('the text of every metric is what prom-client renders, byte for byte', async t => {
  const m = filled(40)
  // Label values that need escaping, and a value prom-client spells specially.
  m.response('quote"back\\slash\nnewline', 'new', 200, 0.01)
  m.response('default', 'legacy', 404, Number.POSITIVE_INFINITY)
  m.upstreamError('c1', 'new', 'refused')
  m.rejectedRequest('bad_path')
  m.setConfig({ hash: 'abc123', contexts: [] })
  const text = await textOf(m)
  t.equal(text, await m.registry.metrics())
  t.match(text, /^strangler_requests_total\{context="quote\\"back\\\\slash\\nnewline",side="new",code="2xx"\} 1$/m)
  t.match(text, /^strangler_request_duration_seconds_bucket\{le="30",context="c0",side="new"\} 0$/m)
  t.match(text, /^strangler_request_duration_seconds_sum\{context="default",side="legacy"\} \+Inf$/m)
  t.match(text, /^strangler_context_weight_percent\{context="c2",source="effective"\} 0$/m)
})

t.test('with no traffic, the families are there without series, as prom-client has them', async t => {
  const m = new Metrics({ processMetrics: false })
  m.exportWeights(() => [])
  t.equal(await textOf(m), await m.registry.metrics())
})

t.test('rendering thousands of contexts lets the event loop turn between chunks', async t => {
  const m = filled(3000)
  let done = false
  let turns = 0
  const spin = (): void => {
    if (done) return
    turns++
    setImmediate(spin)
  }
  setImmediate(spin)
  const text = await textOf(m)
  done = true
  t.equal(text.split('\n').filter(l => l.startsWith('strangler_request_duration_seconds_count')).length, 6000)
  // A chunk is 256 series of a family: 6,000 (context, side) pairs in two families and 3,000 weights.
  // Rendered in one go, the loop would turn at most once.
  t.ok(turns >= 50, `the loop turned ${turns} times`)
})

t.test('with workers, the primary adds up their responses for the board, and prom-client the rest', async t => {
  const workers = [new Metrics({ processMetrics: false, role: 'data' }), new Metrics({ processMetrics: false, role: 'data' })]
  workers[0].response('orders', 'new', 200, 0.003)
  workers[0].response('orders', 'new', 502, 0.2)
  workers[1].response('orders', 'new', 200, 0.004)
  workers[1].response('orders', 'legacy', 200, 0.003)
  const primary = new Metrics({ processMetrics: false, role: 'control' })
  primary.reloads.labels('success').inc()
  const sent = await Promise.all(workers.map(w => w.forPrimary()))
  const others = AggregatorRegistry.aggregate([await primary.families(), ...sent.map(w => w.families)] as Parameters<typeof AggregatorRegistry.aggregate>[0])
  const sample = sampleOf(await primary.fleetJSON(mergeRows(sent.map(w => w.rows)), others) as MetricFamily[], 0)
  t.same(sample.sides.get('orders\0new'), { requests: 3, errors: 1, buckets: [2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3] })
  t.same(sample.sides.get('orders\0legacy')?.requests, 1)
  t.same(sample.reloads, { success: 1, failure: 0 })
})
