import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { get, routes } from './helpers.ts'
import { collector, CONTENT_TYPE, decodeRaw, serve, unquote, type Post, type Span } from './otlp.ts'
import { ok, scriptedUpstream, type UpstreamRequest } from './raw-upstream.ts'

const TRACE = '0af7651916cd43dd8448eb211c80319c'
const PARENT = 'b7ad6b7169203331'
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

/**
 * The first test's request as `protoc --decode_raw` reads it, by field number
 * alone: ExportTraceServiceRequest.resource_spans 1 { resource 1 { attributes 1 },
 * scope_spans 2 { scope 1 { name 1, version 2 }, spans 2 { trace_id 1,
 * parent_span_id 4, name 5, kind 6, start 7 and end 8 (fixed64), attributes 9
 * { key 1, value 2 { string_value 1 | int_value 3 } }, status 15 } } }.
 */
function rawFields (t: Test, body: Buffer): void {
  const raw = decodeRaw(body)
  const all = (m: unknown, k: string): any[] => (m as Map<string, any[]>).get(k) ?? []
  t.equal(all(raw, '1').length, 1, 'one ResourceSpans')
  const [rs] = all(raw, '1')
  const resource = new Map(all(all(rs, '1')[0], '1').map(kv => [unquote(all(kv, '1')[0]).toString(), all(all(kv, '2')[0], '1')[0]]))
  t.equal(resource.get('service.name'), '"edge-test"')
  t.equal(resource.get('deployment.environment.name'), '"ci"')
  const [ss] = all(rs, '2')
  t.strictSame([all(all(ss, '1')[0], '1'), all(all(ss, '1')[0], '2')], [['"strangler-proxy"'], [`"${VERSION}"`]])
  t.equal(all(ss, '2').length, 1, 'one Span')
  const [span] = all(ss, '2')
  t.equal(unquote(all(span, '1')[0]).toString('hex'), TRACE)
  t.equal(unquote(all(span, '4')[0]).toString('hex'), PARENT)
  t.strictSame(all(span, '5'), ['"GET /api/orders"'])
  t.strictSame(all(span, '6'), ['2'], 'SPAN_KIND_SERVER')
  const [start, end] = [all(span, '7')[0], all(span, '8')[0]]
  t.match(start, /^0x[0-9a-f]{16}$/, 'fixed64')
  t.match(end, /^0x[0-9a-f]{16}$/, 'fixed64')
  t.ok(BigInt(end) >= BigInt(start))
  t.ok(Math.abs(Number(BigInt(start) / 1_000_000n) - Date.now()) < 60_000, 'nanoseconds since the epoch')
  const attributes = new Map(all(span, '9').map(kv => [unquote(all(kv, '1')[0]).toString(), all(kv, '2')[0]]))
  t.equal(attributes.size, 10)
  t.strictSame([...attributes.get('http.response.status_code').entries()], [['3', ['200']]], 'int_value, a varint')
  t.strictSame([...attributes.get('url.path').entries()], [['1', ['"/api/orders/7"']]], 'string_value')
  t.strictSame(all(span, '15'), ['""'], 'status, empty: STATUS_CODE_UNSET')
}

/** Every POST carried the protocol's Content-Type. */
function sentAs (t: Test, posts: Post[], protocol: keyof typeof CONTENT_TYPE): void {
  t.strictSame(posts.filter(p => p.type !== CONTENT_TYPE[protocol]).map(p => p.type), [], `sent as ${protocol}`)
}

function traceparentOf (r: UpstreamRequest): string[] {
  return r.headers.filter(([n]) => n.toLowerCase() === 'traceparent').map(([, v]) => v)
}

/**
 * The span tests of tracing.test.ts (http/json) and tracing-protobuf.test.ts:
 * each protocol in a file of its own, so that each file stays within tap's
 * timeout on a busy machine.
 */
export function tracingCases (protocol: keyof typeof CONTENT_TYPE): void {
  t.test(`each proxied request is a SERVER span continuing the incoming traceparent; the upstream gets the proxy span as parent; no query anywhere (${protocol})`, async t => {
    const otlp = await collector(t)
    const up = await scriptedUpstream(t, () => ok())
    const p = await serve(t, routes({ legacy: up.url, new: up.url, weight: 0 }), { OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_SERVICE_NAME: 'edge-test', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=ci' })
    const r = await get(`${p.base}/api/orders/7?token=s3cret`, { headers: { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'vendor=abc' } })
    t.equal(r.status, 200)
    await p.stop()
    sentAs(t, otlp.posts, protocol)
    t.equal(otlp.spans.length, 1)
    const [span] = otlp.spans
    t.strictSame({ traceId: span.traceId, parentSpanId: span.parentSpanId, name: span.name, kind: span.kind }, { traceId: TRACE, parentSpanId: PARENT, name: 'GET /api/orders', kind: 2 })
    const [{ headers }] = up.requests
    t.strictSame(span.attributes, {
      'http.request.method': 'GET',
      'url.path': '/api/orders/7',
      'url.scheme': 'http',
      'http.route': '/api/orders',
      'strangler.context': 'orders',
      'strangler.side': 'legacy',
      'strangler.decision': 'weight',
      'strangler.upstream': 'monolith',
      'strangler.request_id': headers.find(([n]) => n === 'x-request-id')?.[1],
      'http.response.status_code': 200
    })
    t.equal(span.resource['service.name'], 'edge-test')
    t.equal(span.resource['deployment.environment.name'], 'ci')
    t.strictSame(traceparentOf(up.requests[0]), [`00-${TRACE}-${span.spanId}-01`], 'one traceparent, the proxy span as parent')
    t.strictSame(headers.filter(([n]) => n === 'tracestate').map(([, v]) => v), ['vendor=abc'])
    t.notMatch(Buffer.concat(otlp.posts.map(p => p.body)).toString('latin1'), /s3cret|token=/)
    t.equal(otlp.posts.length, 1)
    t.strictSame(span.scope, { name: 'strangler-proxy', version: VERSION })
    if (protocol === 'http/protobuf') rawFields(t, otlp.posts[0].body)
  })

  t.test(`a fallback is a CLIENT span of its own under the request's, and the legacy upstream gets it as parent (${protocol})`, async t => {
    const otlp = await collector(t)
    const legacy = await scriptedUpstream(t, () => ok())
    // New resets every connection before answering: a port found free and closed again (deadPort) can be taken by another process meanwhile.
    const next = await scriptedUpstream(t, () => socket => { socket.destroy() })
    const yaml = routes({ legacy: legacy.url, new: next.url, weight: 100, extra: '    fallback: true' })
    const p = await serve(t, yaml, { OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${otlp.url}/v1/traces` })
    t.equal((await get(`${p.base}/api/orders`, { headers: { traceparent: `00-${TRACE}-${PARENT}-01` } })).status, 200)
    await p.stop()
    sentAs(t, otlp.posts, protocol)
    const server = otlp.spans.find(s => s.kind === 2) as Span
    const client = otlp.spans.find(s => s.kind === 3) as Span
    t.equal(otlp.spans.length, 2)
    t.equal(server.resource['service.name'], 'strangler-proxy', 'the default service name')
    t.match(server.attributes, { 'strangler.side': 'legacy', 'strangler.upstream': 'monolith', 'strangler.fallback': 'reset', 'strangler.decision': 'weight', 'http.response.status_code': 200 })
    t.strictSame({ traceId: client.traceId, parentSpanId: client.parentSpanId, name: client.name }, { traceId: TRACE, parentSpanId: server.spanId, name: 'GET monolith' })
    t.strictSame(client.attributes, { 'http.request.method': 'GET', 'strangler.context': 'orders', 'strangler.side': 'legacy', 'strangler.upstream': 'monolith', 'strangler.fallback': 'reset', 'http.response.status_code': 200 })
    t.strictSame(traceparentOf(legacy.requests[0]), [`00-${TRACE}-${client.spanId}-01`])
  })

  t.test(`a shadow request is a CLIENT span of its own; the new side gets it as parent (${protocol})`, async t => {
    const otlp = await collector(t)
    const legacy = await scriptedUpstream(t, () => ok('same'))
    const next = await scriptedUpstream(t, () => ok('same'))
    // learnNoise 0: the default re-sends 5% of shadowed requests to legacy, a third span and a second legacy request.
    const yaml = routes({ legacy: legacy.url, new: next.url, weight: 0, extra: '    shadow:\n      percent: 100\n      learnNoise: 0' })
    const p = await serve(t, yaml, { OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })
    t.equal((await get(`${p.base}/api/orders`)).status, 200)
    // The comparison is counted after the shadow's span has ended.
    while (!/strangler_shadow_requests_total\{context="orders",result="match"\} 1/.test((await get(`${p.admin}/metrics`)).body));
    await p.stop()
    sentAs(t, otlp.posts, protocol)
    t.equal(otlp.spans.length, 2)
    const server = otlp.spans.find(s => s.kind === 2) as Span
    const shadow = otlp.spans.find(s => s.kind === 3) as Span
    t.equal(shadow.parentSpanId, server.spanId)
    t.equal(shadow.traceId, server.traceId)
    t.strictSame(shadow.attributes, { 'http.request.method': 'GET', 'strangler.context': 'orders', 'strangler.side': 'new', 'strangler.upstream': 'orders-svc', 'strangler.shadow': true, 'http.response.status_code': 200 })
    t.strictSame(traceparentOf(next.requests[0]), [`00-${server.traceId}-${shadow.spanId}-01`])
    t.strictSame(traceparentOf(legacy.requests[0]), [`00-${server.traceId}-${server.spanId}-01`])
  })

  t.test(`OTEL_TRACES_SAMPLER=always_off exports nothing yet still propagates (${protocol})`, async t => {
    const otlp = await collector(t)
    const up = await scriptedUpstream(t, () => ok())
    const p = await serve(t, routes({ legacy: up.url, new: up.url, weight: 0 }), { OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_TRACES_SAMPLER: 'always_off' })
    await get(`${p.base}/api/orders`, { headers: { traceparent: `00-${TRACE}-${PARENT}-01` } })
    await get(`${p.base}/api/orders`)
    await p.stop()
    sentAs(t, otlp.posts, protocol)
    t.strictSame(otlp.posts, [])
    const [continued, started] = up.requests.map(traceparentOf)
    t.match(continued, [new RegExp(`^00-${TRACE}-[0-9a-f]{16}-00$`)], 'the same trace, not sampled')
    t.not(continued[0].split('-')[2], PARENT, 'the proxy\'s span is the parent')
    t.match(started, [/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/], 'a new trace when none came in')
  })

  t.test(`with server.workers each worker traces its requests and exports them when it drains (${protocol})`, async t => {
    const otlp = await collector(t)
    const up = await scriptedUpstream(t, () => ok())
    const p = await serve(t, routes({ legacy: up.url, new: up.url, weight: 0, server: '  workers: 2' }), { OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })
    for (let i = 0; i < 4; i++) t.equal((await get(`${p.base}/api/orders/${i}`, { headers: { connection: 'close' } })).status, 200)
    await p.stop()
    sentAs(t, otlp.posts, protocol)
    t.strictSame(otlp.spans.map(s => s.attributes['url.path']).sort(), ['/api/orders/0', '/api/orders/1', '/api/orders/2', '/api/orders/3'])
    t.strictSame(up.requests.map(r => traceparentOf(r)[0].split('-')[2]).sort(), otlp.spans.map(s => s.spanId).sort())
  })
}
