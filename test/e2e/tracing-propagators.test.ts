import t from 'tap'
import { get, routes } from '../helpers.ts'
import { collector, serve } from '../otlp.ts'
import { ok, scriptedUpstream, type UpstreamRequest } from '../raw-upstream.ts'

const TRACE = '0af7651916cd43dd8448eb211c80319c'
const PARENT = 'b7ad6b7169203331'
const INCOMING = `00-${TRACE}-${PARENT}-01`

function header (r: UpstreamRequest, name: string): string[] {
  return r.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v)
}

const warnings = (logs: Array<Record<string, any>>, msg: RegExp): Array<Record<string, any>> => logs.filter(l => l.level === 40 && msg.test(l.msg))

t.test('OTEL_PROPAGATORS', async t => {
  const run = async (propagators: string | undefined, headers: Record<string, string>): Promise<{ sent: UpstreamRequest; spans: Array<{ traceId: string; parentSpanId?: string; spanId: string }>; logs: Array<Record<string, any>> }> => {
    const otlp = await collector(t)
    const up = await scriptedUpstream(t, () => ok())
    const p = await serve(t, routes({ legacy: up.url, new: up.url, weight: 0 }), { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, ...(propagators === undefined ? {} : { OTEL_PROPAGATORS: propagators }) })
    t.equal((await get(`${p.base}/api/orders`, { headers })).status, 200)
    await p.stop()
    return { sent: up.requests[0], spans: otlp.spans, logs: p.logs }
  }
  const incoming = { traceparent: INCOMING, tracestate: 'vendor=abc', baggage: 'k1=v1, k2 = v%202' }

  await t.test('default (tracecontext): traceparent continued, baggage passed as sent', async t => {
    const { sent, spans, logs } = await run(undefined, incoming)
    t.strictSame(spans.map(s => [s.traceId, s.parentSpanId]), [[TRACE, PARENT]])
    t.strictSame(header(sent, 'traceparent'), [`00-${TRACE}-${spans[0].spanId}-01`])
    t.strictSame(header(sent, 'baggage'), ['k1=v1, k2 = v%202'])
    t.strictSame(warnings(logs, /propagat/i), [])
  })

  await t.test('tracecontext,baggage: the W3C baggage is read and written again by the SDK\'s W3CBaggagePropagator', async t => {
    const { sent, spans } = await run('tracecontext,baggage', incoming)
    t.strictSame(header(sent, 'traceparent'), [`00-${TRACE}-${spans[0].spanId}-01`])
    t.strictSame(header(sent, 'baggage'), ['k1=v1,k2=v%202'], 'one header, re-encoded')
  })

  await t.test('baggage alone: no trace context read or written, baggage re-encoded', async t => {
    const { sent, spans } = await run('baggage', incoming)
    t.not(spans[0].traceId, TRACE, 'a new trace')
    t.equal(spans[0].parentSpanId, undefined)
    t.strictSame(header(sent, 'traceparent'), [INCOMING], 'the client\'s, untouched')
    t.strictSame(header(sent, 'baggage'), ['k1=v1,k2=v%202'])
  })

  await t.test('none: each request is a new trace, and every trace header goes through as sent', async t => {
    const { sent, spans, logs } = await run('none', incoming)
    t.equal(spans.length, 1)
    t.not(spans[0].traceId, TRACE)
    t.equal(spans[0].parentSpanId, undefined)
    t.strictSame([header(sent, 'traceparent'), header(sent, 'tracestate'), header(sent, 'baggage')], [[INCOMING], ['vendor=abc'], ['k1=v1, k2 = v%202']])
    t.strictSame(warnings(logs, /propagat/i), [])
  })

  await t.test('unknown values: one warning naming them; the known ones still apply', async t => {
    const { sent, spans, logs } = await run('b3, tracecontext,xray', incoming)
    t.strictSame(header(sent, 'traceparent'), [`00-${TRACE}-${spans[0].spanId}-01`])
    const warned = warnings(logs, /propagat/i)
    t.equal(warned.length, 1)
    t.match(warned[0], { variable: 'OTEL_PROPAGATORS', unknown: ['b3', 'xray'] })
  })
})
