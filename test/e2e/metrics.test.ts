import http from 'node:http'
import t from 'tap'
import { admin, deadPort, get, proxy, routes, tally, upstream } from '../helpers.ts'

/** Prometheus text format → { 'name{labels}': value }, failing on any line that is not valid. */
function parseMetrics (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|[Nn]a[Nn]|\+Inf|-Inf)$/.exec(line)
    if (m === null) throw new Error(`not Prometheus text: ${line}`)
    out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]))
  }
  return out
}

t.test('/metrics parses as Prometheus text and counts every request once, by the side that served it', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 40 }))
  const counts = await tally(`${p.base}/api/orders/1`, 200)
  await tally(`${p.base}/elsewhere`, 7)
  await get(p.base, { path: '/api/%2e%2e/x' })
  const r = await admin(p, 'GET', '/metrics')
  t.equal(r.status, 200)
  const m = parseMetrics(r.text)
  t.equal(m.get('strangler_requests_total{context="orders",side="new",code="2xx"}'), counts.new)
  t.equal(m.get('strangler_requests_total{context="orders",side="legacy",code="2xx"}'), counts.legacy)
  t.equal(m.get('strangler_requests_total{context="default",side="legacy",code="2xx"}'), 7)
  t.equal(m.get('strangler_request_duration_seconds_count{context="orders",side="new"}'), counts.new)
  t.equal(m.get('strangler_rejected_requests_total{reason="bad_path"}'), 1)
  t.equal(m.get('strangler_context_weight_percent{context="orders",source="config"}'), 40)
  t.equal(m.get('strangler_context_weight_percent{context="orders",source="effective"}'), 40)
  t.equal(m.get(`strangler_config_info{hash="${p.config.hash}"}`), 1)
  t.equal(m.get('strangler_config_reloads_total{result="success"}'), 0)
  t.ok(m.has('process_cpu_user_seconds_total'), 'Node process metrics are exported')
  t.notOk([...m.keys()].some(k => k.includes('/api')), 'labels never carry raw paths')
})

t.test('upstream errors are counted with their reason', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: `http://127.0.0.1:${await deadPort()}`, weight: 100 }))
  for (let i = 0; i < 3; i++) t.equal((await get(`${p.base}/api/orders`)).status, 502)
  const m = parseMetrics((await admin(p, 'GET', '/metrics')).text)
  t.equal(m.get('strangler_upstream_errors_total{context="orders",side="new",reason="refused"}'), 3)
  t.equal(m.get('strangler_requests_total{context="orders",side="new",code="5xx"}'), 3)
})

t.test('weight series follow reloads: changed values, and removed contexts disappear', async t => {
  const { writeFileSync } = await import('node:fs')
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 40 }))
  writeFileSync(p.file, routes({ legacy: legacy.url, new: next.url, weight: 60 }).replace('  orders:', '  carts:').replace('/api/orders', '/api/carts'))
  t.equal((await p.reload('admin')).ok, true)
  const m = parseMetrics((await admin(p, 'GET', '/metrics')).text)
  t.equal(m.get('strangler_context_weight_percent{context="carts",source="config"}'), 60)
  t.equal(m.get('strangler_context_weight_percent{context="carts",source="effective"}'), 60)
  t.notOk(m.has('strangler_context_weight_percent{context="orders",source="config"}'), 'the removed context is gone')
})

t.test('series with known labels are exported at 0 before anything happens', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0 }).replace('    weight: 0\n', '    weight: 0\n    fallback: true\n'))
  const m = parseMetrics((await admin(p, 'GET', '/metrics')).text)
  for (const reason of ['bad_path', 'body_too_large', 'headers_too_large', 'timeout', 'bad_request']) {
    t.equal(m.get(`strangler_rejected_requests_total{reason="${reason}"}`), 0, reason)
  }
  for (const reason of ['refused', 'reset', 'timeout', 'dns', 'protocol', 'tls', 'other']) {
    t.equal(m.get(`strangler_upstream_errors_total{context="default",side="legacy",reason="${reason}"}`), 0, reason)
  }
  for (const reason of ['refused', 'reset', 'timeout', '5xx']) {
    t.equal(m.get(`strangler_fallbacks_total{context="orders",reason="${reason}"}`), 0, `fallback ${reason}`)
  }
  t.equal(m.get('strangler_config_last_reload_successful'), 1)
})

t.test('strangler_config_last_reload_successful is 0 while the file on disk is refused, 1 again once it loads', async t => {
  const { writeFileSync } = await import('node:fs')
  const legacy = await upstream(t, 'legacy')
  const good = routes({ legacy: legacy.url, new: legacy.url, weight: 0 })
  const p = await proxy(t, good)
  const gauge = async (): Promise<number | undefined> => parseMetrics((await admin(p, 'GET', '/metrics')).text).get('strangler_config_last_reload_successful')
  writeFileSync(p.file, good.replace('weight: 0', 'weight: 150'))
  t.equal((await p.reload('admin')).ok, false)
  t.equal(await gauge(), 0)
  t.equal((await p.reload('admin')).ok, false)
  t.equal(await gauge(), 0, 'still 0: the bad file is still there')
  writeFileSync(p.file, good)
  t.equal((await p.reload('admin')).ok, true)
  t.equal(await gauge(), 1)
})

t.test('strangler_context_overridden: 1 under an operator\'s override, 0 at a ramp step (whose effective weight also differs)', async t => {
  const legacy = await upstream(t, 'legacy')
  const now = Date.parse('2026-11-24T00:00:00Z')
  const clock = { now: () => now }
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0, server: '  adminToken: tok', extra: '    ramp: { steps: [10, 50], every: 10m }\n  carts:\n    match: { paths: [/api/carts] }\n    legacy: monolith\n    new: orders-svc\n    weight: 30' }), { clock, processMetrics: false })
  await p.safety.tick()
  const series = async (): Promise<Map<string, number>> => parseMetrics((await admin(p, 'GET', '/metrics')).text)
  let m = await series()
  t.equal(m.get('strangler_context_weight_percent{context="orders",source="effective"}'), 10, 'the ramp took its first step')
  t.equal(m.get('strangler_context_overridden{context="orders"}'), 0, 'a ramp step is not an override')
  t.equal(m.get('strangler_context_overridden{context="carts"}'), 0)
  t.equal((await admin(p, 'POST', '/contexts/carts/rollback', { token: 'tok', body: { reason: 'test' } })).status, 200)
  m = await series()
  t.equal(m.get('strangler_context_overridden{context="carts"}'), 1)
  t.equal((await admin(p, 'DELETE', '/contexts/carts/override', { token: 'tok' })).status, 200)
  m = await series()
  t.equal(m.get('strangler_context_overridden{context="carts"}'), 0)
})

t.test('/metrics is gzipped for a scraper that accepts it, and OpenMetrics for one that asks for it', async t => {
  const { gunzipSync } = await import('node:zlib')
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0 }))
  await tally(`${p.base}/api/orders/1`, 3)
  const scrape = (headers: Record<string, string>): Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }> => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: p.adminPort, path: '/metrics', headers }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }))
    }).on('error', reject)
  })
  const plain = await scrape({})
  t.equal(plain.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
  t.equal(plain.headers['content-encoding'], undefined)
  const text = plain.body.toString()
  t.match(text, /^# TYPE strangler_requests_total counter$/m)

  const zipped = await scrape({ 'accept-encoding': 'gzip, deflate' })
  t.equal(zipped.headers['content-encoding'], 'gzip')
  t.match(zipped.headers.vary, 'accept-encoding')
  t.ok(zipped.body.length < text.length / 3, `compressed: ${zipped.body.length} of ${text.length} bytes`)
  t.same([...parseMetrics(gunzipSync(zipped.body).toString()).keys()].filter(k => k.startsWith('strangler_')), [...parseMetrics(text).keys()].filter(k => k.startsWith('strangler_')))
  t.equal((await scrape({ 'accept-encoding': 'gzip;q=0' })).headers['content-encoding'], undefined, 'q=0 refuses it')

  // What Prometheus 2.x sends.
  const om = await scrape({ accept: 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1' })
  t.equal(om.headers['content-type'], 'application/openmetrics-text; version=1.0.0; charset=utf-8')
  const body = om.body.toString()
  t.match(body, /^# TYPE strangler_requests counter\n/m, 'a counter family is named without _total')
  t.match(body, /^# HELP strangler_requests Proxied requests/m)
  t.match(body, /^strangler_requests_total\{context="orders",side="legacy",code="2xx"\} 3$/m, 'its samples keep it')
  t.match(body, /^# TYPE strangler_request_duration_seconds histogram$/m)
  t.notMatch(body, /\n\n/, 'no blank lines')
  t.ok(body.endsWith('\n# EOF\n'), 'ends with # EOF')
  t.notMatch(body, /^# TYPE \S+_total counter$/m, 'no counter family keeps _total')
})
