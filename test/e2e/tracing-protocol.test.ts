import t from 'tap'
import { get, routes } from '../helpers.ts'
import { collector, CONTENT_TYPE, serve } from '../otlp.ts'
import { ok, scriptedUpstream, type UpstreamRequest } from '../raw-upstream.ts'

const TRACE = '0af7651916cd43dd8448eb211c80319c'
const PARENT = 'b7ad6b7169203331'
const INCOMING = `00-${TRACE}-${PARENT}-01`

function header (r: UpstreamRequest, name: string): string[] {
  return r.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v)
}

const warnings = (logs: Array<Record<string, any>>, msg: RegExp): Array<Record<string, any>> => logs.filter(l => l.level === 40 && msg.test(l.msg))

t.test('http/protobuf is the default protocol; OTEL_EXPORTER_OTLP_TRACES_PROTOCOL wins over OTEL_EXPORTER_OTLP_PROTOCOL', async t => {
  const up = await scriptedUpstream(t, () => ok())
  const cases: Array<[Record<string, string>, string]> = [
    [{}, CONTENT_TYPE['http/protobuf']],
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, CONTENT_TYPE['http/json']],
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }, CONTENT_TYPE['http/protobuf']],
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }, CONTENT_TYPE['http/json']]
  ]
  for (const [env, type] of cases) {
    const otlp = await collector(t)
    const p = await serve(t, routes({ legacy: up.url, new: up.url, weight: 0 }), { ...env, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })
    t.equal((await get(`${p.base}/api/orders`)).status, 200)
    await p.stop()
    t.strictSame(otlp.posts.map(p => p.type), [type], JSON.stringify(env))
    t.strictSame(otlp.spans.map(s => s.name), ['GET /api/orders'])
    t.strictSame(warnings(p.logs, /protocol/i), [])
  }
})

t.test('grpc is not supported: one warning naming the variable and its value, and tracing stays off', async t => {
  for (const name of ['OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL']) {
    const otlp = await collector(t)
    const up = await scriptedUpstream(t, () => ok())
    const p = await serve(t, routes({ legacy: up.url, new: up.url, weight: 0 }), { [name]: 'grpc', OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })
    t.equal((await get(`${p.base}/api/orders`, { headers: { traceparent: INCOMING } })).status, 200)
    await p.stop()
    t.strictSame(otlp.posts, [], 'nothing sent')
    t.strictSame(header(up.requests[0], 'traceparent'), [INCOMING], 'the client\'s traceparent passes untouched, as with tracing off')
    const warned = warnings(p.logs, /protocol/i)
    t.equal(warned.length, 1)
    t.match(warned[0], { variable: name, value: 'grpc', msg: /not supported.*tracing is off/ })
    t.strictSame(p.logs.filter(l => /^tracing: exporting/.test(l.msg)), [])
  }
})

t.test('an unknown protocol is warned about once and http/protobuf is used, as the OpenTelemetry SDKs do', async t => {
  const otlp = await collector(t)
  const up = await scriptedUpstream(t, () => ok())
  const p = await serve(t, routes({ legacy: up.url, new: up.url, weight: 0 }), { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/xml', OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })
  t.equal((await get(`${p.base}/api/orders`)).status, 200)
  await p.stop()
  t.strictSame(otlp.posts.map(p => p.type), [CONTENT_TYPE['http/protobuf']])
  const warned = warnings(p.logs, /protocol/i)
  t.equal(warned.length, 1)
  t.match(warned[0], { variable: 'OTEL_EXPORTER_OTLP_PROTOCOL', value: 'http/xml', msg: /http\/protobuf/ })
})
