import t from 'tap'
import { configuredWeight, decide, ROLLED_BACK, type EffectiveWeight } from '../../src/routing/decide.ts'
import { overrideBp } from '../../src/state/weight.ts'
import { queryValue } from '../../src/routing/segments.ts'
import { compileTable } from '../../src/routing/table.ts'
import type { Segment, Side } from '../../src/types.ts'
import { configOf } from '../fixtures/config.ts'

const SEGMENTS: Segment[] = [
  { header: 'x-tenant', values: ['acme', 'globex', 'zürich'], side: 'new' },
  { cookie: 'beta', values: ['1'], side: 'new', name: 'beta-testers' },
  { query: 'region', values: ['eu', 'a b', 'x+y'], side: 'legacy' }
]

const table = compileTable(configOf([
  { name: 'orders', paths: ['/api/orders'], weight: 50, sticky: { header: 'x-user-id' }, segments: SEGMENTS },
  { name: 'carts', paths: ['/api/carts'], weight: 50 }
]))
const weightOf = (bp: number): EffectiveWeight => () => bp

function side (url: string, headers: Record<string, string | string[]>, bp = 5000, preview: Side | null = null): { side: Side; by: string; segment: string | null } {
  const d = decide(table, weightOf(bp), 'GET', url, { host: 'shop', ...headers }, () => preview)
  if (d === null) throw new Error('refused')
  return { side: d.side, by: d.by, segment: d.segment?.label ?? null }
}

t.test('a header segment: the name in any case, the value exactly', async t => {
  t.strictSame(side('/api/orders', { 'x-tenant': 'acme' }, 0), { side: 'new', by: 'segment', segment: '0' })
  t.strictSame(side('/api/orders', { 'x-tenant': 'Acme' }, 0), { side: 'legacy', by: 'weight', segment: null })
  t.strictSame(side('/api/orders', { 'x-tenant': 'acme ' }, 0).side, 'legacy', 'Node trims the header; a value with inner bytes differs')
  t.strictSame(side('/api/orders', { 'x-tenant': 'acme, globex' }, 0).side, 'legacy', 'a header sent twice (joined by Node) is neither value')
  // Node hands header bytes over one per char: UTF-8 bytes are read as the text they encode.
  t.strictSame(side('/api/orders', { 'x-tenant': Buffer.from('zürich').toString('latin1') }, 0).side, 'new')
})

t.test('a cookie segment: the value as sent, never percent-decoded', async t => {
  t.strictSame(side('/api/orders', { cookie: 'sid=9; beta=1' }, 0), { side: 'new', by: 'segment', segment: 'beta-testers' })
  t.strictSame(side('/api/orders', { cookie: 'beta="1"' }, 0).side, 'new', 'quotes are taken off, as for sticky')
  t.strictSame(side('/api/orders', { cookie: 'beta=%31' }, 0).side, 'legacy')
  t.strictSame(side('/api/orders', { cookie: 'xbeta=1; beta=2' }, 0).side, 'legacy')
  t.strictSame(side('/api/orders', { cookie: ['a=b', 'beta=1'] }, 0).side, 'new', 'several Cookie headers')
})

t.test('a query segment: name and value percent-decoded, the first occurrence decides', async t => {
  t.strictSame(side('/api/orders?region=eu', {}, 10000), { side: 'legacy', by: 'segment', segment: '2' })
  t.strictSame(side('/api/orders?x=1&region=%65u', {}, 10000).side, 'legacy')
  t.strictSame(side('/api/orders?reg%69on=eu', {}, 10000).side, 'legacy')
  t.strictSame(side('/api/orders?region=a%20b', {}, 10000).side, 'legacy')
  t.strictSame(side('/api/orders?region=a+b', {}, 10000).side, 'new', '+ is not a space')
  t.strictSame(side('/api/orders?region=x+y', {}, 10000).side, 'legacy')
  t.strictSame(side('/api/orders?region=us&region=eu', {}, 10000).side, 'new')
  t.strictSame(side('/api/orders?region=EU', {}, 10000).side, 'new')
  t.strictSame(side('/api/orders?region=%zz', {}, 10000).side, 'new', 'a broken encoding matches nothing')
  t.strictSame(side('/api/orders?myregion=eu', {}, 10000).side, 'new')
})

t.test('queryValue reads the raw query as the proxy receives it', async t => {
  t.equal(queryValue('', 'a'), undefined)
  t.equal(queryValue('?', 'a'), undefined)
  t.equal(queryValue('?a', 'a'), undefined)
  t.equal(queryValue('?a=', 'a'), undefined)
  t.equal(queryValue('?b=1&a=2&a=3', 'a'), '2')
  t.equal(queryValue('?a=1=2', 'a'), '1=2')
  t.equal(queryValue('?%61=%E2%9C%93', 'a'), '✓')
  t.equal(queryValue(`?a=${Buffer.from('é').toString('latin1')}`, 'a'), 'é')
  t.equal(queryValue('?a=%E2%9C', 'a'), undefined)
})

t.test('the first matching segment decides, whatever the weight or the sticky bucket', async t => {
  for (const bp of [0, 1, 5000, 9999, 10000]) {
    t.strictSame(side('/api/orders?region=eu', { 'x-tenant': 'acme', cookie: 'beta=1', 'x-user-id': 'u1' }, bp), { side: 'new', by: 'segment', segment: '0' })
    t.strictSame(side('/api/orders?region=eu', { cookie: 'beta=1' }, bp).segment, 'beta-testers')
    t.strictSame(side('/api/orders?region=eu', { 'x-user-id': 'u1' }, bp), { side: 'legacy', by: 'segment', segment: '2' })
  }
  t.strictSame(side('/api/orders', { 'x-user-id': 'u1' }, 5000).by, 'sticky', 'no segment: the sticky bucket')
})

t.test('a rollback sends the segments to legacy too; a preview token beats a segment', async t => {
  t.strictSame(side('/api/orders', { 'x-tenant': 'acme' }, ROLLED_BACK), { side: 'legacy', by: 'weight', segment: null })
  t.strictSame(side('/api/orders', { 'x-tenant': 'acme', 'x-user-id': 'u1' }, ROLLED_BACK), { side: 'legacy', by: 'sticky', segment: null })
  t.strictSame(side('/api/orders', { 'x-tenant': 'acme' }, 0, 'legacy'), { side: 'legacy', by: 'preview', segment: null })
  t.strictSame(side('/api/orders?region=eu', {}, 5000, 'new'), { side: 'new', by: 'preview', segment: null })
  t.strictSame(side('/api/orders', {}, ROLLED_BACK, 'new'), { side: 'new', by: 'preview', segment: null }, 'a tester previews new during a rollback, as before')
})

t.test('which overrides are rollbacks: to 0 by an operator or a guard; not a ramp step at 0, nor any other weight', async t => {
  t.equal(overrideBp({ weight: 0 }), ROLLED_BACK)
  t.equal(overrideBp({ weight: 0, ramp: { step: 0, nextAt: '2026-12-03T00:00:00.000Z' } }), 0)
  t.equal(overrideBp({ weight: 30 }), 3000)
  t.equal(overrideBp({ weight: 0.01 }), 1)
  t.equal(overrideBp({ weight: 100 }), 10000)
})

t.test('a context without segments decides as before, and never reads a cookie or the query', async t => {
  const d = decide(table, configuredWeight, 'GET', '/api/carts?region=eu', { host: 'shop', 'x-tenant': 'acme', cookie: 'beta=1' })
  t.equal(d?.segment, null)
  t.equal(table.byName.get('carts')?.segments, null)
  const trap = new Proxy({ host: 'shop' }, { get: (o, k) => { if (k === 'cookie') throw new Error('read the cookie'); return (o as Record<string | symbol, unknown>)[k] } })
  t.doesNotThrow(() => decide(table, configuredWeight, 'GET', '/api/carts', trap))
  t.throws(() => decide(table, weightOf(0), 'GET', '/api/orders', trap), /read the cookie/, 'orders has a cookie segment: it reads it')
})
