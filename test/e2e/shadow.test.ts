import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import type http from 'node:http'
import t, { type Test } from 'tap'
import type { Shadows } from '../../src/shadow/shadows.ts'
import { admin, deadPort, get, proxy, routes, upstream } from '../helpers.ts'

const TOKEN = 'tok'

function json (body: unknown): http.RequestListener {
  return (_req, res) => {
    const text = typeof body === 'function' ? JSON.stringify((body as () => unknown)()) : JSON.stringify(body)
    res.writeHead(200, { 'content-type': 'application/json', etag: '"v1"' })
    res.end(text)
  }
}

function shadowed (legacyUrl: string, newUrl: string, shadow: string, server = ''): string {
  return routes({ legacy: legacyUrl, new: newUrl, weight: 0, server: `  adminToken: ${TOKEN}\n${server}`, extra: `    shadow:\n${shadow.split('\n').map(l => `      ${l}`).join('\n')}` })
}

function results (shadows: Shadows, n: number): Promise<string[]> {
  const out: string[] = []
  return new Promise(resolve => {
    const on = (_ctx: string, result: string): void => {
      out.push(result)
      if (out.length === n) {
        shadows.off('result', on)
        resolve(out)
      }
    }
    shadows.on('result', on)
  })
}

function text (body: () => string, contentType: string | null = 'text/plain'): http.RequestListener {
  return (_req, res) => {
    res.writeHead(200, contentType === null ? {} : { 'content-type': contentType })
    res.end(body())
  }
}

function tally (results: string[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const r of results) out[r] = (out[r] ?? 0) + 1
  return out
}

/** strangler_shadow_requests_total of one context, by result, as scraped. */
async function shadowCounters (p: Parameters<typeof admin>[0], context = 'orders'): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  const re = new RegExp(`^strangler_shadow_requests_total\\{context="${context}",result="(\\w+)"\\} (\\d+)$`, 'gm')
  for (const m of (await admin(p, 'GET', '/metrics')).text.matchAll(re)) out[m[1]] = Number(m[2])
  return out
}

/** The table `strangler status` prints (dist/cli.js: run `npm run build` first). */
async function cliStatus (p: { adminPort: number }): Promise<string> {
  const out = await new Promise<string>(resolve => execFile(process.execPath, [new URL('../../dist/cli.js', import.meta.url).pathname, 'status', '--admin', `http://127.0.0.1:${p.adminPort}`], (_e, stdout) => resolve(stdout)))
  return out.slice(out.indexOf('\n\n') + 2)
}

async function start (t: Test, yaml: string) {
  const p = await proxy(t, yaml)
  return Object.assign(p, { shadows: p.local?.shadows as Shadows })
}

t.test('the client gets legacy\'s answer without waiting for a slow or dead shadow', async t => {
  const legacy = await upstream(t, 'legacy')
  let release: () => void = () => {}
  const held = new Promise<void>(resolve => { release = resolve })
  const slow = await upstream(t, 'new', (_req, res) => { void held.then(() => res.end('late')) })
  const p = await start(t, shadowed(legacy.url, slow.url, 'percent: 100\nlearnNoise: 0'))
  const r = await get(`${p.base}/api/orders/1`)
  t.equal(JSON.parse(r.body).name, 'legacy')
  t.equal(slow.seen.length, 1, 'the shadow was sent')
  t.equal(slow.seen[0].headers['x-strangler-shadow'], '1')
  t.equal(p.shadows.inflight, 1, 'and is still waiting while the client already has its answer')
  const done = results(p.shadows, 1)
  release()
  t.same(await done, ['mismatch'])

  const dead = await start(t, shadowed(legacy.url, `http://127.0.0.1:${await deadPort()}`, 'percent: 100\nlearnNoise: 0'))
  const errored = results(dead.shadows, 1)
  t.equal(JSON.parse((await get(`${dead.base}/api/orders/1`)).body).name, 'legacy')
  t.same(await errored, ['error'])
})

t.test('only idempotent methods are shadowed unless listed; small bodies are shadowed when listed', async t => {
  const legacy = await upstream(t, 'legacy', json({ ok: true }))
  const next = await upstream(t, 'new', json({ ok: true }))
  const p = await start(t, shadowed(legacy.url, next.url, 'percent: 100\nlearnNoise: 0'))
  await get(`${p.base}/api/orders`, { method: 'POST', body: 'x' })
  await get(`${p.base}/api/orders`, { method: 'DELETE' })
  const one = results(p.shadows, 1)
  await get(`${p.base}/api/orders`)
  t.same(await one, ['match'])
  t.same(next.seen.map(s => s.method), ['GET'], 'POST and DELETE never reached new')

  const q = await start(t, shadowed(legacy.url, next.url, 'percent: 100\nlearnNoise: 0\nmethods: [POST]\nmaxBodyBytes: 10'))
  const two = results(q.shadows, 2)
  await get(`${q.base}/api/orders`, { method: 'POST', body: 'small' })
  await get(`${q.base}/api/orders`, { method: 'POST', body: 'much too large for the limit' })
  t.same((await two).sort(), ['dropped', 'match'])
  t.same(next.seen.slice(1).map(s => [s.method, s.body]), [['POST', 'small']])
  t.same(legacy.seen.slice(-2).map(s => s.body), ['small', 'much too large for the limit'], 'legacy always got the request')
})

t.test('JSON is compared structurally; ignore paths and named headers are honoured; diffs need the token and redact', async t => {
  const body = { id: 7, generatedAt: 1, items: [{ sku: 'a', price: 5, updatedAt: 1 }], card: { number: '4111' } }
  const legacy = await upstream(t, 'legacy', json(body))
  let variant = { ...body, generatedAt: 2, items: [{ sku: 'a', price: 5, updatedAt: 2 }] }
  const next = await upstream(t, 'new', (req, res) => json(variant)(req, res))
  const p = await start(t, shadowed(legacy.url, next.url, 'percent: 100\nlearnNoise: 0\ncompare:\n  headers: [etag]\n  ignore: [generatedAt, items.*.updatedAt]\nredact:\n  fields: [card]'))
  const first = results(p.shadows, 1)
  await get(`${p.base}/api/orders/7`)
  t.same(await first, ['match'], 'differences only in ignored fields')
  variant = { ...body, items: [{ sku: 'a', price: 6, updatedAt: 1 }], card: { number: '5500' } }
  const second = results(p.shadows, 1)
  await get(`${p.base}/api/orders/7?token=secret`)
  t.same(await second, ['mismatch'])

  t.equal((await admin(p, 'GET', '/contexts/orders/diffs')).status, 401)
  const diffs = await admin(p, 'GET', '/contexts/orders/diffs', { token: TOKEN })
  t.equal(diffs.status, 200)
  t.same(diffs.json.diffs.map((d: any) => ({ request: d.request, legacyStatus: d.legacyStatus, newStatus: d.newStatus, differences: d.differences })), [{
    request: 'GET /api/orders/7',
    legacyStatus: 200,
    newStatus: 200,
    differences: [
      { path: 'body.items.0.price', legacy: 5, new: 6 },
      { path: 'body.card.number', legacy: '[redacted]', new: '[redacted]' }
    ]
  }])
  const status = await admin(p, 'GET', '/status')
  t.same(status.json.contexts[0].shadow, { percent: 100, compared: 2, matchRate: 0.5, noisyRate: 0, totals: { match: 1, mismatch: 1, noisy: 0, error: 0, dropped: 0 }, noisyFields: [] })
  const metrics = await admin(p, 'GET', '/metrics')
  t.match(metrics.text, /^strangler_shadow_requests_total\{context="orders",result="match"\} 1$/m)
  t.match(metrics.text, /^strangler_shadow_requests_total\{context="orders",result="mismatch"\} 1$/m)
})

t.test('fields that differ between two legacy answers are learned as noise, not counted as mismatches', async t => {
  let n = 0
  const legacy = await upstream(t, 'legacy', json(() => ({ id: 1, nonce: ++n })))
  const next = await upstream(t, 'new', json(() => ({ id: 1, nonce: -(++n) })))
  const p = await start(t, shadowed(legacy.url, next.url, 'percent: 100\nlearnNoise: 100'))
  const done = results(p.shadows, 3)
  for (let i = 0; i < 3; i++) await get(`${p.base}/api/orders`)
  t.same(await done, ['match', 'match', 'match'])
  t.same((await admin(p, 'GET', '/status')).json.contexts[0].shadow.noisyFields, ['nonce'])
})

t.test('over the concurrency budget, shadows are dropped and counted, never queued', async t => {
  const legacy = await upstream(t, 'legacy')
  const hang = await upstream(t, 'new', () => {})
  const p = await start(t, shadowed(legacy.url, hang.url, 'percent: 100\nlearnNoise: 0'))
  const dropped = results(p.shadows, 68)
  for (let i = 0; i < 100; i++) t.equal((await get(`${p.base}/api/orders/${i}`)).status, 200)
  t.same(new Set(await dropped), new Set(['dropped']))
  t.equal(p.shadows.inflight, 32)
  t.equal(hang.seen.length, 32, 'exactly the shadows in flight reached new')
})

t.test('a reload that changes shadow applies on the next request', async t => {
  const legacy = await upstream(t, 'legacy', json({ a: 1 }))
  const next = await upstream(t, 'new', json({ a: 1 }))
  const p = await start(t, routes({ legacy: legacy.url, new: next.url, weight: 0 }))
  await get(`${p.base}/api/orders`)
  t.equal(next.seen.length, 0)
  writeFileSync(p.file, shadowed(legacy.url, next.url, 'percent: 100\nlearnNoise: 0'))
  t.equal((await p.reload('admin')).ok, true)
  const one = results(p.shadows, 1)
  await get(`${p.base}/api/orders`)
  t.same(await one, ['match'])
  t.equal(next.seen.length, 1)
})

t.test('strangler status shows the shadow match rate', async t => {
  const legacy = await upstream(t, 'legacy', json({ a: 1 }))
  const next = await upstream(t, 'new', json({ a: 2 }))
  const p = await start(t, shadowed(legacy.url, next.url, 'percent: 100\nlearnNoise: 0'))
  const done = results(p.shadows, 3)
  for (const path of ['/api/orders', '/elsewhere', '/api/orders', '/api/orders']) await get(`${p.base}${path}`)
  t.same(await done, ['mismatch', 'mismatch', 'mismatch'], 'unmatched traffic is never shadowed')
  t.equal(await cliStatus(p), 'CONTEXT  CONFIGURED  EFFECTIVE  SHADOW                 OVERRIDE\norders   0%          0%         100%, 0.0% match of 3  -\n')
})

t.test('issue 15.7: a plain-text body legacy does not reproduce is noisy, never a match; a stable one that new changes is a mismatch', async t => {
  let n = 0
  const legacy = await upstream(t, 'legacy', (req, res) => text(() => req.url === '/api/orders/static' ? 'static page' : `orders at ${new Date().toISOString()} #${++n}`)(req, res))
  let m = 0
  const next = await upstream(t, 'new', text(() => `new answer ${++m}`))
  const p = await start(t, shadowed(legacy.url, next.url, 'percent: 100\nlearnNoise: 100'))
  const done = results(p.shadows, 60)
  for (let i = 0; i < 60; i++) t.match((await get(`${p.base}/api/orders`)).body, /^orders at .* #\d+$/)
  t.same(tally(await done), { noisy: 60 }, 'not one of them is a match')
  const stable = results(p.shadows, 1)
  t.equal((await get(`${p.base}/api/orders/static`)).body, 'static page')
  t.same(await stable, ['mismatch'], 'legacy reproduces this one, new does not: noise learned at another endpoint does not excuse it')

  const status = (await admin(p, 'GET', '/status')).json.contexts[0].shadow
  t.same(status, { percent: 100, compared: 61, matchRate: 0, noisyRate: 60 / 61, totals: { match: 0, mismatch: 1, noisy: 60, error: 0, dropped: 0 }, noisyFields: [] })
  t.same(await shadowCounters(p), { match: 0, mismatch: 1, noisy: 60, error: 0, dropped: 0 })
  t.equal(await cliStatus(p), 'CONTEXT  CONFIGURED  EFFECTIVE  SHADOW                               OVERRIDE\norders   0%          0%         100%, 0.0% match of 61, 98.4% noisy  -\n')
  const diffs = (await admin(p, 'GET', '/contexts/orders/diffs', { token: TOKEN })).json.diffs
  t.equal(diffs.length, 20)
  t.match(diffs[0], { result: 'mismatch', request: 'GET /api/orders/static', differences: [{ path: 'body', legacy: /^11 bytes, sha256 [0-9a-f]{12}: "static page"$/, new: /"new answer \d+"$/ }] })
  t.match(diffs[1], { result: 'noisy', request: 'GET /api/orders', differences: [{ path: 'body', legacy: /"orders at .* #\d+"$/, new: /"new answer \d+"$/ }] })
})

t.test('with learnNoise sampling, whole-body differences are mismatches until legacy is seen to vary, then noisy: never a match', async t => {
  let n = 0
  const legacy = await upstream(t, 'legacy', text(() => `orders at ${++n}`))
  let m = 0
  const next = await upstream(t, 'new', text(() => `new answer ${++m}`))
  const p = await start(t, shadowed(legacy.url, next.url, 'percent: 100\nlearnNoise: 50'))
  const done = results(p.shadows, 60)
  for (let i = 0; i < 60; i++) await get(`${p.base}/api/orders/${i}`)
  const got = await done
  const first = got.includes('noisy') ? got.indexOf('noisy') : got.length
  t.ok(first < got.length, 'some request was sent to legacy twice (all 60 missing it: p = 2^-60)')
  t.same(got.slice(0, first), new Array(first).fill('mismatch'), 'before legacy was seen to vary')
  t.same(got.slice(first), new Array(60 - first).fill('noisy'), 'after')
  const counts = { match: 0, mismatch: first, noisy: 60 - first, error: 0, dropped: 0 }
  t.same((await admin(p, 'GET', '/status')).json.contexts[0].shadow.totals, counts)
  t.same(await shadowCounters(p), counts)
})

t.test('JSON sent as text/plain is compared field by field: a changing time is learned as noise, any other difference is a mismatch', async t => {
  let n = 0
  let total = 5
  const legacy = await upstream(t, 'legacy', text(() => JSON.stringify({ id: 1, total: 5, time: ++n })))
  const next = await upstream(t, 'new', text(() => JSON.stringify({ id: 1, total, time: 1000 + (++n) })))
  const p = await start(t, shadowed(legacy.url, next.url, 'percent: 100\nlearnNoise: 100'))
  const matched = results(p.shadows, 10)
  for (let i = 0; i < 10; i++) await get(`${p.base}/api/orders/1`)
  t.same(await matched, new Array(10).fill('match'))
  total = 6
  const differed = results(p.shadows, 1)
  await get(`${p.base}/api/orders/1`)
  t.same(await differed, ['mismatch'])
  const diffs = (await admin(p, 'GET', '/contexts/orders/diffs', { token: TOKEN })).json.diffs
  t.same(diffs.map((d: any) => [d.result, d.differences]), [['mismatch', [{ path: 'body.total', legacy: 5, new: 6 }]]])
  const status = (await admin(p, 'GET', '/status')).json.contexts[0].shadow
  t.same(status, { percent: 100, compared: 11, matchRate: 10 / 11, noisyRate: 0, totals: { match: 10, mismatch: 1, noisy: 0, error: 0, dropped: 0 }, noisyFields: ['time'] })
  t.same(await shadowCounters(p), { match: 10, mismatch: 1, noisy: 0, error: 0, dropped: 0 })
})

t.test('compare.ignore applies to JSON sent without a content type', async t => {
  let n = 0
  let total = 5
  const legacy = await upstream(t, 'legacy', text(() => JSON.stringify({ id: 1, total: 5, time: ++n }), null))
  const next = await upstream(t, 'new', text(() => JSON.stringify({ time: 1000 + (++n), total, id: 1 }), 'application/octet-stream'))
  const p = await start(t, shadowed(legacy.url, next.url, 'percent: 100\nlearnNoise: 0\ncompare:\n  ignore: [time]'))
  const matched = results(p.shadows, 5)
  for (let i = 0; i < 5; i++) await get(`${p.base}/api/orders/1`)
  t.same(await matched, new Array(5).fill('match'))
  total = 7
  const differed = results(p.shadows, 1)
  await get(`${p.base}/api/orders/1`)
  t.same(await differed, ['mismatch'])
  const diffs = (await admin(p, 'GET', '/contexts/orders/diffs', { token: TOKEN })).json.diffs
  t.same(diffs.map((d: any) => [d.result, d.differences]), [['mismatch', [{ path: 'body.total', legacy: 5, new: 7 }]]])
  t.same(await shadowCounters(p), { match: 5, mismatch: 1, noisy: 0, error: 0, dropped: 0 })
})
