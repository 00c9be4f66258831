import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { createInterface } from 'node:readline'
import t, { type Test } from 'tap'
import { configFile, deadPort, get, routes, tempDir } from '../helpers.ts'
import { ok, scriptedUpstream, type UpstreamRequest } from '../raw-upstream.ts'

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname
const TRACE = '0af7651916cd43dd8448eb211c80319c'
const PARENT = 'b7ad6b7169203331'

interface Span { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes: Record<string, unknown>; resource: Record<string, unknown> }

function values (list: Array<{ key: string; value: Record<string, unknown> }>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const { key, value } of list) out[key] = value.intValue !== undefined ? Number(value.intValue) : Object.values(value)[0]
  return out
}

/** A real OTLP/HTTP receiver: POST /v1/traces with OTLP/JSON; keeps every body as received and the spans in it. */
async function collector (t: Test): Promise<{ url: string; bodies: string[]; spans: Span[] }> {
  const c = { url: '', bodies: [] as string[], spans: [] as Span[] }
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = []
    req.on('data', (p: Buffer) => parts.push(p))
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || req.headers['content-type'] !== 'application/json') {
        res.writeHead(400).end()
        return
      }
      const body = Buffer.concat(parts).toString()
      c.bodies.push(body)
      for (const rs of JSON.parse(body).resourceSpans) {
        for (const ss of rs.scopeSpans) for (const s of ss.spans) c.spans.push({ ...s, attributes: values(s.attributes), resource: values(rs.resource.attributes) })
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  c.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return c
}

/** `strangler serve` as a real process with `env` added (and no OTEL_* of ours); stop() sends SIGTERM and waits for exit 0. */
async function serve (t: Test, yaml: string, env: Record<string, string>, args: string[] = []): Promise<{ base: string; admin: string; stop: () => Promise<void> }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_')))
  const child = spawn(process.execPath, [...args, CLI, 'serve', '--config', configFile(t, yaml)], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const lines = createInterface({ input: child.stdout })
  const listening = await new Promise<Record<string, string>>(resolve => lines.on('line', line => {
    const entry = JSON.parse(line)
    if (entry.msg === 'proxy listening') resolve(entry)
  }))
  return {
    base: `http://${listening.listen}`,
    admin: `http://${listening.admin}`,
    stop: async () => {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const [code] = await exited
      t.equal(code, 0, 'exits 0 after flushing its spans')
    }
  }
}

function traceparentOf (r: UpstreamRequest): string[] {
  return r.headers.filter(([n]) => n.toLowerCase() === 'traceparent').map(([, v]) => v)
}

t.test('each proxied request is a SERVER span continuing the incoming traceparent; the upstream gets the proxy span as parent; no query anywhere', async t => {
  const otlp = await collector(t)
  const up = await scriptedUpstream(t, () => ok())
  const p = await serve(t, routes({ legacy: up.url, new: up.url, weight: 0 }), { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_SERVICE_NAME: 'edge-test', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=ci' })
  const r = await get(`${p.base}/api/orders/7?token=s3cret`, { headers: { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'vendor=abc' } })
  t.equal(r.status, 200)
  await p.stop()
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
  t.notMatch(otlp.bodies.join(''), /s3cret|token=/)
})

t.test('a fallback is a CLIENT span of its own under the request\'s, and the legacy upstream gets it as parent', async t => {
  const otlp = await collector(t)
  const legacy = await scriptedUpstream(t, () => ok())
  const yaml = routes({ legacy: legacy.url, new: `http://127.0.0.1:${await deadPort()}`, weight: 100, extra: '    fallback: true' })
  const p = await serve(t, yaml, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${otlp.url}/v1/traces` })
  t.equal((await get(`${p.base}/api/orders`, { headers: { traceparent: `00-${TRACE}-${PARENT}-01` } })).status, 200)
  await p.stop()
  const server = otlp.spans.find(s => s.kind === 2) as Span
  const client = otlp.spans.find(s => s.kind === 3) as Span
  t.equal(otlp.spans.length, 2)
  t.equal(server.resource['service.name'], 'strangler-proxy', 'the default service name')
  t.match(server.attributes, { 'strangler.side': 'legacy', 'strangler.upstream': 'monolith', 'strangler.fallback': 'refused', 'strangler.decision': 'weight', 'http.response.status_code': 200 })
  t.strictSame({ traceId: client.traceId, parentSpanId: client.parentSpanId, name: client.name }, { traceId: TRACE, parentSpanId: server.spanId, name: 'GET monolith' })
  t.strictSame(client.attributes, { 'http.request.method': 'GET', 'strangler.context': 'orders', 'strangler.side': 'legacy', 'strangler.upstream': 'monolith', 'strangler.fallback': 'refused', 'http.response.status_code': 200 })
  t.strictSame(traceparentOf(legacy.requests[0]), [`00-${TRACE}-${client.spanId}-01`])
})

t.test('a shadow request is a CLIENT span of its own; the new side gets it as parent', async t => {
  const otlp = await collector(t)
  const legacy = await scriptedUpstream(t, () => ok('same'))
  const next = await scriptedUpstream(t, () => ok('same'))
  const yaml = routes({ legacy: legacy.url, new: next.url, weight: 0, extra: '    shadow:\n      percent: 100' })
  const p = await serve(t, yaml, { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })
  t.equal((await get(`${p.base}/api/orders`)).status, 200)
  // The comparison is counted after the shadow's span has ended.
  while (!/strangler_shadow_requests_total\{context="orders",result="match"\} 1/.test((await get(`${p.admin}/metrics`)).body));
  await p.stop()
  t.equal(otlp.spans.length, 2)
  const server = otlp.spans.find(s => s.kind === 2) as Span
  const shadow = otlp.spans.find(s => s.kind === 3) as Span
  t.equal(shadow.parentSpanId, server.spanId)
  t.equal(shadow.traceId, server.traceId)
  t.strictSame(shadow.attributes, { 'http.request.method': 'GET', 'strangler.context': 'orders', 'strangler.side': 'new', 'strangler.upstream': 'orders-svc', 'strangler.shadow': true, 'http.response.status_code': 200 })
  t.strictSame(traceparentOf(next.requests[0]), [`00-${server.traceId}-${shadow.spanId}-01`])
  t.strictSame(traceparentOf(legacy.requests[0]), [`00-${server.traceId}-${server.spanId}-01`])
})

t.test('OTEL_TRACES_SAMPLER=always_off exports nothing yet still propagates', async t => {
  const otlp = await collector(t)
  const up = await scriptedUpstream(t, () => ok())
  const p = await serve(t, routes({ legacy: up.url, new: up.url, weight: 0 }), { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_TRACES_SAMPLER: 'always_off' })
  await get(`${p.base}/api/orders`, { headers: { traceparent: `00-${TRACE}-${PARENT}-01` } })
  await get(`${p.base}/api/orders`)
  await p.stop()
  t.strictSame(otlp.bodies, [])
  const [continued, started] = up.requests.map(traceparentOf)
  t.match(continued, [new RegExp(`^00-${TRACE}-[0-9a-f]{16}-00$`)], 'the same trace, not sampled')
  t.not(continued[0].split('-')[2], PARENT, 'the proxy\'s span is the parent')
  t.match(started, [/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/], 'a new trace when none came in')
})

t.test('without OTEL_EXPORTER_OTLP_ENDPOINT no OpenTelemetry SDK module is loaded, and a client\'s traceparent passes untouched', async t => {
  const dir = tempDir(t)
  const probe = path.join(dir, 'probe.cjs')
  // Written at exit: every module file CommonJS loaded (the SDK packages are CommonJS, imported or required).
  writeFileSync(probe, `process.on('exit', () => require('fs').writeFileSync(process.env.PROBE_OUT, JSON.stringify(Object.keys(require('module')._cache))))`)
  const loaded = async (env: Record<string, string>): Promise<string[]> => {
    const out = path.join(dir, `${Object.keys(env).length}.json`)
    const up = await scriptedUpstream(t, () => ok())
    const p = await serve(t, routes({ legacy: up.url, new: up.url, weight: 0 }), { ...env, PROBE_OUT: out }, ['--require', probe])
    await get(`${p.base}/api/orders`, { headers: { traceparent: `00-${TRACE}-${PARENT}-01` } })
    await p.stop()
    if (Object.keys(env).length === 0) t.strictSame(traceparentOf(up.requests[0]), [`00-${TRACE}-${PARENT}-01`])
    // prom-client loads @opentelemetry/api (the no-op API, for exemplars) whatever we do.
    return (JSON.parse(readFileSync(out, 'utf8')) as string[]).filter(f => f.includes('/@opentelemetry/') && !f.includes('/@opentelemetry/api/'))
  }
  const otlp = await collector(t)
  t.ok((await loaded({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })).some(f => f.includes('/@opentelemetry/sdk-trace-base/')), 'the probe sees the SDK when tracing is on')
  t.strictSame(await loaded({}), [])
})

t.test('with server.workers each worker traces its requests and exports them when it drains', async t => {
  const otlp = await collector(t)
  const up = await scriptedUpstream(t, () => ok())
  const p = await serve(t, routes({ legacy: up.url, new: up.url, weight: 0, server: '  workers: 2' }), { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })
  for (let i = 0; i < 4; i++) t.equal((await get(`${p.base}/api/orders/${i}`, { headers: { connection: 'close' } })).status, 200)
  await p.stop()
  t.strictSame(otlp.spans.map(s => s.attributes['url.path']).sort(), ['/api/orders/0', '/api/orders/1', '/api/orders/2', '/api/orders/3'])
  t.strictSame(up.requests.map(r => traceparentOf(r)[0].split('-')[2]).sort(), otlp.spans.map(s => s.spanId).sort())
})
