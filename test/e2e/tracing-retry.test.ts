import t from 'tap'
import { get, routes } from '../helpers.ts'
import { collector, serve } from '../otlp.ts'
import { ok, scriptedUpstream } from '../raw-upstream.ts'

const warnings = (logs: Array<Record<string, any>>, msg: RegExp): Array<Record<string, any>> => logs.filter(l => l.level === 40 && msg.test(l.msg))

t.test('a connection error and a 503 are retried, the 503 after its Retry-After; requests are answered meanwhile', async t => {
  const otlp = await collector(t, n => [{ status: 0 }, { status: 503, headers: { 'retry-after': '2' } }][n] ?? { status: 200 })
  const up = await scriptedUpstream(t, () => ok())
  const p = await serve(t, routes({ legacy: up.url, new: up.url, weight: 0 }), { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '50' })
  t.equal((await get(`${p.base}/api/orders/1`)).status, 200)
  await otlp.received(2)
  t.equal((await get(`${p.base}/api/orders/2`)).status, 200)
  t.equal(otlp.posts.length, 2, 'answered while the export waits for Retry-After')
  await otlp.received(3)
  await p.stop()
  const [refused, busy, accepted] = otlp.posts
  t.ok(busy.body.equals(refused.body) && accepted.body.equals(refused.body), 'the same batch each time')
  t.ok(busy.at - refused.at >= 800, `backoff after the connection error: ${Math.round(busy.at - refused.at)} ms`)
  t.ok(accepted.at - busy.at >= 2000, `Retry-After: 2 honoured: ${Math.round(accepted.at - busy.at)} ms`)
  t.strictSame(otlp.spans.map(s => s.attributes['url.path']).sort(), ['/api/orders/1', '/api/orders/2'], 'each span exported once')
  t.strictSame(warnings(p.logs, /export/), [])
})

t.test('a 400 is never retried: the batch is dropped with one warning', async t => {
  const otlp = await collector(t, () => ({ status: 400 }))
  const up = await scriptedUpstream(t, () => ok())
  const p = await serve(t, routes({ legacy: up.url, new: up.url, weight: 0 }), { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })
  t.equal((await get(`${p.base}/api/orders`)).status, 200)
  await p.stop()
  t.equal(otlp.posts.length, 1)
  const warned = warnings(p.logs, /export/)
  t.equal(warned.length, 1)
  t.match(warned[0], { msg: 'trace export failed; these spans are lost', err: 'collector answered 400', attempts: 1, spans: 1 })
})

t.test('retries stop at OTEL_EXPORTER_OTLP_TIMEOUT: a receiver always answering 503 gets two attempts in 2 s, then one warning', async t => {
  const otlp = await collector(t, () => ({ status: 503 }))
  const up = await scriptedUpstream(t, () => ok())
  const p = await serve(t, routes({ legacy: up.url, new: up.url, weight: 0 }), { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_TIMEOUT: '2000' })
  t.equal((await get(`${p.base}/api/orders`)).status, 200)
  await p.stop()
  // First backoff 0.8–1.2 s, the second 1.2–1.8 s: it would end past the 2 s deadline.
  t.equal(otlp.posts.length, 2)
  const warned = warnings(p.logs, /export/)
  t.equal(warned.length, 1)
  t.match(warned[0], { err: 'collector answered 503', attempts: 2, spans: 1 })
})
