import { writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import httpProxy from '@fastify/http-proxy'
import rateLimit from '@fastify/rate-limit'
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import t, { type Test } from 'tap'
// As a user imports it: the package's own name, resolved through `exports` to the build.
import strangler from 'strangler-proxy'
import { configFile, get, routes, upstream, type NamedUpstream } from '../helpers.ts'

const TOKEN = 'plugin-token'

/** routes() with the admin token; server.listen is the app's business and is not read. */
function yaml (legacy: NamedUpstream, next: NamedUpstream, weight: number, server = ''): string {
  return routes({ legacy: legacy.url, new: next.url, weight, server: `  adminToken: ${TOKEN}\n${server}` })
}

/** A Fastify app the way a user builds one, whose log lines are kept. */
function userApp (): { app: FastifyInstance; lines: Array<Record<string, any>> } {
  const lines: Array<Record<string, any>> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (s: string) => { lines.push(JSON.parse(s)) } } } })
  return { app, lines }
}

async function listen (t: Test, app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

function adminOf (lines: Array<Record<string, any>>): string {
  const line = lines.find(l => l.msg === 'strangler admin listening')
  if (line === undefined) throw new Error('no admin line')
  return `http://${line.admin}`
}

function who (r: { status: number; body: string }): string {
  return r.status === 200 ? (JSON.parse(r.body) as { name: string }).name : `status ${r.status}`
}

t.test('inside a Fastify app: its hooks and plugins run for proxied requests, its routes keep their paths, the YAML routes the rest', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const other = await upstream(t, 'other')
  const file = configFile(t, yaml(legacy, next, 100))

  const exporter = new InMemorySpanExporter()
  const otel = new FastifyOtelInstrumentation({ registerOnInitialization: false })
  otel.setTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))

  const { app, lines } = userApp()
  await app.register(otel.plugin())
  app.addHook('onRequest', async (req, reply) => {
    if (req.headers['x-key'] !== 'let-me-in') return reply.code(401).send({ error: 'who are you' })
  })
  await app.register(rateLimit, { max: 3, timeWindow: 60_000, keyGenerator: req => String(req.headers['x-client']) })
  await app.register(httpProxy, { upstream: other.url, prefix: '/elsewhere', rewritePrefix: '/elsewhere' })
  app.get('/own', async () => ({ name: 'own route' }))
  await app.register(strangler, { configFile: file })
  const base = await listen(t, app)

  const as = (client: string): http.OutgoingHttpHeaders => ({ 'x-key': 'let-me-in', 'x-client': client })
  t.equal(who(await get(`${base}/api/orders/7`, { headers: as('a') })), 'new', 'a context at weight 100: new')
  t.equal(who(await get(`${base}/catalog?page=2`, { headers: as('b') })), 'legacy', 'no context: the default')
  t.equal(who(await get(`${base}/elsewhere/x`, { headers: as('c') })), 'other', '@fastify/http-proxy keeps its prefix')
  t.equal(who(await get(`${base}/own`, { headers: as('d') })), 'own route', 'the app keeps its own route')
  t.equal(next.seen.at(-1)?.url, '/api/orders/7')
  t.equal(legacy.seen.at(-1)?.url, '/catalog?page=2')

  const refused = await get(`${base}/api/orders/8`, { headers: { 'x-client': 'e' } })
  t.equal(refused.status, 401, 'the app\'s onRequest hook answers first')
  t.equal(next.seen.length, 1, 'a refused request reaches no upstream')

  const limited = []
  for (let i = 0; i < 4; i++) limited.push((await get(`${base}/catalog`, { headers: as('f') })).status)
  t.same(limited, [200, 200, 200, 429], '@fastify/rate-limit counts proxied requests')
  t.equal(legacy.seen.length, 4, 'the limited request reached no upstream')

  const spans = exporter.getFinishedSpans().filter(s => s.name === 'request' && s.attributes['url.path'] === '/api/orders/7')
  t.equal(spans.length, 1, '@fastify/otel traced the proxied request')
  t.equal(spans[0]?.attributes['http.response.status_code'], 200)

  // The admin listener of server.admin, and a hot reload through it.
  const adminBase = adminOf(lines)
  const status = await get(`${adminBase}/status`)
  t.same(JSON.parse(status.body).contexts.map((c: { name: string; effectiveWeight: number }) => [c.name, c.effectiveWeight]), [['orders', 100]])
  writeFileSync(file, yaml(legacy, next, 0))
  const reload = await get(`${adminBase}/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(reload.status, 200)
  t.equal(who(await get(`${base}/api/orders/9`, { headers: as('g') })), 'legacy', 'the reloaded weight is in force')
  t.equal(lines.filter(l => l.msg === 'incoming request' && l.req?.url === '/api/orders/9').length, 1, 'the app\'s own request logging is the app\'s to choose')
})

t.test('closing the app lets a proxied response finish, then closes the admin listener', async t => {
  let release: () => void = () => {}
  const held = new Promise<void>(resolve => { release = resolve })
  const legacy = await upstream(t, 'legacy', (req, res) => {
    void held.then(() => res.end(JSON.stringify({ name: 'legacy' })))
  })
  const { app, lines } = userApp()
  await app.register(strangler, { configFile: configFile(t, yaml(legacy, legacy, 0)) })
  const base = await listen(t, app)
  const adminBase = adminOf(lines)
  t.equal((await get(`${adminBase}/readyz`)).status, 200)

  const inFlight = get(`${base}/slow`)
  while (legacy.seen.length === 0) await new Promise(resolve => setImmediate(resolve))
  const closed = app.close()
  const readyz = await get(`${adminBase}/readyz`)
  t.equal(readyz.status, 503, 'readyz turns 503 while draining')
  release()
  t.equal(who(await inFlight), 'legacy', 'the response in flight finishes')
  await closed
  await t.rejects(get(`${adminBase}/healthz`), { code: 'ECONNREFUSED' }, 'the admin listener is closed')
})

t.test('{ admin: false }: no admin listener', async t => {
  const legacy = await upstream(t, 'legacy')
  // server.admin names a port that is taken: only an admin listener would notice.
  const taken = http.createServer()
  await new Promise<void>(resolve => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => taken.close(() => resolve())))
  const port = (taken.address() as AddressInfo).port
  const file = configFile(t, yaml(legacy, legacy, 0).replace('admin: 127.0.0.1:0', `admin: 127.0.0.1:${port}`))

  const withAdmin = userApp().app
  await t.rejects(async () => { await withAdmin.register(strangler, { configFile: file }) }, { code: 'EADDRINUSE' }, 'by default the admin listener binds server.admin')
  await withAdmin.close()

  const { app, lines } = userApp()
  await app.register(strangler, { configFile: file, admin: false })
  const base = await listen(t, app)
  t.equal(who(await get(`${base}/anything`)), 'legacy')
  t.equal(lines.filter(l => l.msg === 'strangler admin listening').length, 0)
})

t.test('server.workers above 1 is refused: the app owns its listener', async t => {
  const legacy = await upstream(t, 'legacy')
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(strangler, { configFile: configFile(t, yaml(legacy, legacy, 0, '  workers: 2')) }) },
    { message: /server\.workers is 2: inside a Fastify app/ })
})

t.test('an invalid config is refused at registration with every error listed', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  const file = configFile(t, 'upstreams:\n  a:\n    url: http://127.0.0.1:1\ndefault: b\n')
  await t.rejects(async () => { await app.register(strangler, { configFile: file }) }, { message: /routes\.yaml:4:\d+ .*b/ })
})
