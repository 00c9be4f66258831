import fc from 'fast-check'
import t from 'tap'
import { decide, type EffectiveWeight } from '../../src/routing/decide.ts'
import { overrideBp } from '../../src/state/weight.ts'
import { bucket } from '../../src/routing/sticky.ts'
import { compileTable } from '../../src/routing/table.ts'
import type { Segment, Side } from '../../src/types.ts'
import { configOf } from '../fixtures/config.ts'

/*
 * The side decision against a reference model written from the README:
 * a preview token first; then a rollback (an operator's or a guard's override
 * to 0, not a ramp step) sends everything to legacy; then the first segment
 * whose header, cookie or query value is listed decides; then the weight, by
 * the sticky key's bucket when there is one.
 */

type Kind = 'header' | 'cookie' | 'query'
const KEYS: Record<Kind, string[]> = { header: ['x-tenant', 'X-Plan'], cookie: ['beta', 'sid'], query: ['region', 'r'] }
const VALUES = ['a', 'b', 'é', 'a b']

const segment = fc.record({
  kind: fc.constantFrom<Kind>('header', 'cookie', 'query'),
  key: fc.nat(1),
  values: fc.uniqueArray(fc.constantFrom(...VALUES), { minLength: 1, maxLength: 3 }),
  side: fc.constantFrom<Side>('legacy', 'new'),
  named: fc.boolean()
})

/** Valid segments only: a value already pinned for the same header, cookie or parameter is left out, as `check` demands. */
const segments = fc.array(segment, { maxLength: 4 }).map(list => {
  const claimed = new Set<string>()
  const out: Segment[] = []
  for (const s of list) {
    const raw = KEYS[s.kind][s.key]
    const key = s.kind === 'header' ? raw.toLowerCase() : raw
    const values = s.values.filter(v => !claimed.has(`${s.kind} ${key} ${v}`))
    for (const v of values) claimed.add(`${s.kind} ${key} ${v}`)
    if (values.length === 0) continue
    out.push({ [s.kind]: key, values, side: s.side, ...(s.named ? { name: `s${out.length}x` } : {}) })
  }
  return out
})

/** How a client may send a value: plain, or (query only) percent-encoded; the model knows what each means. */
const sent = fc.record({ value: fc.constantFrom(...VALUES, 'A', 'c'), encode: fc.boolean() })
const request = fc.record({
  headers: fc.array(fc.tuple(fc.constantFrom('x-tenant', 'x-plan'), sent), { maxLength: 2 }),
  cookies: fc.array(fc.tuple(fc.constantFrom('beta', 'sid', 'other'), sent), { maxLength: 3 }),
  query: fc.array(fc.tuple(fc.constantFrom('region', 'r', 'x'), sent), { maxLength: 3 }),
  user: fc.option(fc.integer({ min: 0, max: 999 }), { nil: undefined })
})
type Request = typeof request extends fc.Arbitrary<infer R> ? R : never

const override = fc.oneof(
  fc.constant(null),
  fc.record({ weight: fc.integer({ min: 0, max: 100 }), by: fc.constantFrom('admin', 'guard') }),
  fc.record({ weight: fc.integer({ min: 0, max: 100 }), by: fc.constant('ramp'), ramp: fc.constant({ step: 0, nextAt: '2026-12-03T00:00:00.000Z' }) })
)
type Override = { weight: number; by: string; ramp?: object } | null

/** What the proxy receives: header bytes one per char, cookies as sent, query percent-encoded where asked. */
function wire (r: Request): { url: string; headers: Record<string, string> } {
  const latin1 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1')
  const headers: Record<string, string> = { host: 'shop' }
  // Node keeps the first of a repeated x- header joined with ", ": send each name once.
  for (const [name, v] of r.headers) headers[name] ??= latin1(v.value)
  if (r.cookies.length > 0) headers.cookie = r.cookies.map(([name, v]) => `${name}=${latin1(v.value).replace(' ', '_')}`).join('; ')
  if (r.user !== undefined) headers['x-user-id'] = `u${r.user}`
  const query = r.query.map(([name, v]) => `${name}=${v.encode ? encodeURIComponent(v.value) : latin1(v.value).replace(' ', '%20')}`).join('&')
  return { url: `/api/orders${query === '' ? '' : `?${query}`}`, headers }
}

/** The value a segment on (kind, key) reads, as the README defines it. */
function modelValue (r: Request, kind: Kind, key: string): string | undefined {
  if (kind === 'header') return r.headers.find(([name]) => name === key)?.[1].value
  if (kind === 'cookie') return r.cookies.find(([name]) => name === key)?.[1].value.replace(' ', '_')
  return r.query.find(([name]) => name === key)?.[1].value
}

interface Outcome { side: Side | 'random'; by: string; segment: number | null }

function model (segs: Segment[], configured: number, o: Override, preview: Side | null, r: Request): Outcome {
  if (preview !== null) return { side: preview, by: 'preview', segment: null }
  const rolledBack = o !== null && o.weight === 0 && o.by !== 'ramp'
  if (!rolledBack) {
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i]
      const kind: Kind = s.header !== undefined ? 'header' : s.cookie !== undefined ? 'cookie' : 'query'
      const v = modelValue(r, kind, (s.header ?? s.cookie ?? s.query) as string)
      if (v !== undefined && s.values.includes(v)) return { side: s.side, by: 'segment', segment: i }
    }
  }
  const weight = o?.weight ?? configured
  const by = r.user === undefined ? 'weight' : 'sticky'
  if (weight === 0) return { side: 'legacy', by, segment: null }
  if (weight === 100) return { side: 'new', by, segment: null }
  if (r.user === undefined) return { side: 'random', by, segment: null }
  return { side: bucket('orders', `u${r.user}`) < weight * 100 ? 'new' : 'legacy', by, segment: null }
}

function decideWith (segs: Segment[], configured: number, o: Override, preview: Side | null, r: Request): Outcome {
  const table = compileTable(configOf([{ name: 'orders', paths: ['/api/orders'], weight: configured, sticky: { header: 'x-user-id' }, ...(segs.length > 0 ? { segments: segs } : {}) }]))
  const weightOf: EffectiveWeight = ctx => o === null ? ctx.weightBp : overrideBp(o)
  const { url, headers } = wire(r)
  const d = decide(table, weightOf, 'GET', url, headers, () => preview)
  if (d === null) throw new Error(`refused ${url}`)
  if (d.segment !== null && d.segment.label !== (segs[d.segment.index].name ?? String(d.segment.index))) throw new Error(`label ${d.segment.label}`)
  return { side: d.side, by: d.by, segment: d.segment?.index ?? null }
}

const preview = fc.constantFrom<Side | null>(null, null, null, 'legacy', 'new')

t.test('decide agrees with the model: preview, then rollback, then the first matching segment, then the weight', async t => {
  let pinned = 0
  fc.assert(fc.property(segments, fc.integer({ min: 0, max: 100 }), override, preview, request, (segs, configured, o, p, r) => {
    const want = model(segs, configured, o, p, r)
    const got = decideWith(segs, configured, o, p, r)
    if (want.by === 'segment') pinned++
    if (want.side === 'random') got.side = 'random'
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`)
  }), { numRuns: 5000 })
  t.ok(pinned >= 500, `the property is not vacuous: ${pinned} of 5,000 requests were pinned by a segment`)
})

t.test('raising the weight never moves a sticky request that no segment pins from new back to legacy; pinned ones never move', async t => {
  fc.assert(fc.property(segments, fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }), request, (segs, a, b, r) => {
    const user = r.user ?? 7
    const req = { ...r, user }
    const [low, high] = a <= b ? [a, b] : [b, a]
    const before = decideWith(segs, low, null, null, req)
    const after = decideWith(segs, 50, { weight: high, by: 'admin' }, null, req)
    if (before.by === 'segment' || after.by === 'segment') {
      if (JSON.stringify(before) !== JSON.stringify(after) && high > 0) throw new Error(`a pinned request moved: ${JSON.stringify(before)} → ${JSON.stringify(after)}`)
      return
    }
    if (before.side === 'new' && after.side === 'legacy') throw new Error(`user ${user} moved new → legacy going ${low} → ${high}`)
  }), { numRuns: 3000 })
  t.pass('monotonic')
})

t.test('a rollback sends every request without a preview token to legacy, pinned ones included', async t => {
  fc.assert(fc.property(segments, fc.integer({ min: 0, max: 100 }), fc.constantFrom('admin', 'guard'), request, (segs, configured, by, r) => {
    const got = decideWith(segs, configured, { weight: 0, by }, null, r)
    if (got.side !== 'legacy' || got.segment !== null) throw new Error(`rolled back, got ${JSON.stringify(got)}`)
  }), { numRuns: 2000 })
  t.pass('all legacy')
})
