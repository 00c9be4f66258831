import t from 'tap'
import type { Sample, SideRates, WindowRates } from '../../src/admin/board/rates.ts'
import { boardData, stageOf, type BoardData } from '../../src/admin/board/rows.ts'
import type { ContextStatus } from '../../src/admin/status.ts'
import type { Shadow } from '../../src/types.ts'
import { configOf } from '../fixtures/config.ts'

const shadow = (percent: number): Shadow => ({ percent, methods: ['GET'], maxBodyBytes: 65536, headers: [], ignore: [], redactHeaders: [], redactFields: [], learnNoise: 5 })

t.test('the stage of a context', async t => {
  const plain = { legacy: 'monolith', new: 'svc', shadow: null }
  t.strictSame(stageOf(plain, 0, false), { stage: 'legacy-only', label: 'legacy only' })
  t.strictSame(stageOf({ ...plain, shadow: shadow(10) }, 0, false), { stage: 'shadowing', label: 'shadowing' })
  t.strictSame(stageOf({ ...plain, shadow: shadow(0) }, 0, false), { stage: 'legacy-only', label: 'legacy only' }, 'a shadow of 0% mirrors nothing')
  t.strictSame(stageOf(plain, 25, false), { stage: 'ramping', label: 'ramping 25%' })
  t.strictSame(stageOf({ ...plain, shadow: shadow(10) }, 0.5, false), { stage: 'ramping', label: 'ramping 0.5%' }, 'traffic on new beats shadowing')
  t.strictSame(stageOf(plain, 0, true), { stage: 'ramping', label: 'ramping 0%' }, 'a running ramp on a 0 step')
  t.strictSame(stageOf(plain, 100, false), { stage: 'migrated', label: 'migrated' })
  t.strictSame(stageOf({ ...plain, legacy: 'svc' }, 100, false), { stage: 'retired', label: 'legacy retired' }, 'legacy and new are the same upstream')
  t.strictSame(stageOf({ ...plain, legacy: 'svc' }, 0, false), { stage: 'retired', label: 'legacy retired' }, 'whatever the weight: no rollback reaches the monolith')
})

const side = { requests: 0, errorRate: 0, p99: null }

t.test('config, overrides, guard, ramp, shadow and live rates map to one row per context and the totals above them', async t => {
  const config = configOf([
    { name: 'catalog', paths: ['/catalog'] },
    { name: 'search', paths: ['/search'], shadow: shadow(10) },
    { name: 'reviews', paths: ['/reviews'], shadow: shadow(50) },
    { name: 'orders', paths: ['/orders'], weight: 25 },
    { name: 'payments', paths: ['/payments'], ramp: { steps: [0, 50, 100], everyMs: 60_000 } },
    { name: 'accounts', paths: ['/accounts'], weight: 100, guard: { maxErrorRateDelta: 5, maxLatencyRatio: 3, windowMs: 60_000, minRequests: 10 }, ramp: { steps: [50, 100], everyMs: 60_000 } },
    { name: 'pages', paths: ['/pages'], legacy: 'svc', weight: 100 },
    { name: 'profile', paths: ['/profile'], weight: 100 }
  ])
  const override = (weight: number, by: string): ContextStatus['override'] => ({ weight, reason: `set by ${by}`, by, at: '2026-11-24T00:00:00.000Z', expiresAt: by === 'admin' ? '2026-11-24T02:00:00.000Z' : null })
  const guard = { tripped: true, legacy: { ...side, requests: 40 }, new: { requests: 12, errorRate: 50, p99: 0.1 } }
  const tenants: ContextStatus['segments'] = [
    { label: '0', header: 'x-tenant', values: ['acme', 'globex'], side: 'new' },
    { label: 'eu', query: 'region', values: ['eu'], side: 'legacy', name: 'eu' }
  ]
  const pins = ['0: header x-tenant = acme, globex → new', 'eu: query region = eu → legacy']
  const status: ContextStatus[] = [
    { name: 'catalog', configuredWeight: 0, effectiveWeight: 0, override: null },
    { name: 'search', configuredWeight: 0, effectiveWeight: 0, override: null, shadow: { percent: 10, compared: 200, matchRate: 0.97, noisyRate: 0.015, totals: { match: 194, mismatch: 3, noisy: 3, error: 0, dropped: 0 }, noisyFields: [] } },
    { name: 'reviews', configuredWeight: 0, effectiveWeight: 0, override: null, shadow: null },
    { name: 'orders', configuredWeight: 25, effectiveWeight: 10, override: override(10, 'admin'), segments: tenants, segmentsInForce: true },
    { name: 'payments', configuredWeight: 0, effectiveWeight: 0, override: override(0, 'ramp'), ramp: { step: 1, of: 3, weight: 0, nextAt: '2026-11-24T00:01:00.000Z' } },
    { name: 'accounts', configuredWeight: 100, effectiveWeight: 0, override: override(0, 'guard'), guard, ramp: null, segments: tenants, segmentsInForce: false },
    { name: 'pages', configuredWeight: 100, effectiveWeight: 100, override: null },
    { name: 'profile', configuredWeight: 100, effectiveWeight: 100, override: null }
  ]
  const latest: Sample = {
    at: 10_000,
    bounds: [0.1, Infinity],
    sides: new Map(),
    fallbacks: new Map(),
    shadow: new Map([['reviews', { match: 30, mismatch: 6, noisy: 4 }]]),
    reloads: { success: 3, failure: 1 }
  }
  const orders = { legacy: { rps: 9, errorRate: 0, p99: 0.02, fallbackRate: null }, new: { rps: 1, errorRate: 10, p99: 0.3, fallbackRate: 50 } }
  const window: WindowRates = {
    seconds: 8,
    contexts: new Map<string, Record<'legacy' | 'new', SideRates>>([
      ['orders', orders],
      ['default', { legacy: { rps: 5, errorRate: 0, p99: 0.001, fallbackRate: null }, new: { rps: 0, errorRate: null, p99: null, fallbackRate: null } }],
      ['removed-by-a-reload', { legacy: { rps: 1, errorRate: 0, p99: 0.001, fallbackRate: null }, new: { rps: 1, errorRate: 0, p99: 0.001, fallbackRate: 0 } }]
    ]),
    rps: 17,
    newRps: 2
  }
  const idle = { legacy: { rps: 0, errorRate: null, p99: null, fallbackRate: null }, new: { rps: 0, errorRate: null, p99: null, fallbackRate: null } }
  const row = { legacy: 'monolith', new: 'svc', override: null, traffic: idle, shadow: null, guard: null, ramp: null, segments: null }
  const expected: BoardData = {
    config: { hash: '000000000000', loadedAt: '2026-11-24T00:00:00.000Z', lastReload: 'rejected', errors: ['routes.yaml:3:4 weight must be a number'], reloads: { success: 3, failure: 1 } },
    window: 8,
    traffic: { rps: 17, newRps: 2, unmatchedRps: 5, newShare: (2 / 17) * 100 },
    meanWeight: 210 / 8,
    stages: { 'legacy-only': 2, shadowing: 2, ramping: 2, migrated: 1, retired: 1 },
    dormantOverrides: [],
    contexts: [
      { ...row, name: 'catalog', stage: 'legacy-only', stageLabel: 'legacy only', configuredWeight: 0, effectiveWeight: 0 },
      { ...row, name: 'search', stage: 'shadowing', stageLabel: 'shadowing', configuredWeight: 0, effectiveWeight: 0, shadow: { percent: 10, matchRate: 0.97, noisyRate: 0.015, compared: 200, over: 'recent' } },
      { ...row, name: 'reviews', stage: 'shadowing', stageLabel: 'shadowing', configuredWeight: 0, effectiveWeight: 0, shadow: { percent: 50, matchRate: 0.75, noisyRate: 0.1, compared: 40, over: 'since start' } },
      { ...row, name: 'orders', stage: 'ramping', stageLabel: 'ramping 10%', configuredWeight: 25, effectiveWeight: 10, override: override(10, 'admin'), traffic: orders, segments: { inForce: true, pins } },
      { ...row, name: 'payments', stage: 'ramping', stageLabel: 'ramping 0%', configuredWeight: 0, effectiveWeight: 0, override: override(0, 'ramp'), ramp: { running: true, step: 1, of: 3, nextAt: '2026-11-24T00:01:00.000Z' } },
      { ...row, name: 'accounts', stage: 'legacy-only', stageLabel: 'legacy only', configuredWeight: 100, effectiveWeight: 0, override: override(0, 'guard'), guard, ramp: { running: false, step: null, of: 0, nextAt: null }, segments: { inForce: false, pins } },
      { ...row, name: 'pages', legacy: 'svc', stage: 'retired', stageLabel: 'legacy retired', configuredWeight: 100, effectiveWeight: 100 },
      { ...row, name: 'profile', stage: 'migrated', stageLabel: 'migrated', configuredWeight: 100, effectiveWeight: 100 }
    ]
  }
  const data = boardData({ config, status, loadedAt: new Date('2026-11-24T00:00:00Z'), lastError: ['routes.yaml:3:4 weight must be a number'], latest, window })
  t.strictSame(data, expected)
  t.equal(JSON.stringify(data).includes('http://'), false, 'upstream names, never their addresses')
})

t.test('before the window has two snapshots: no live numbers, the mean weight still', async t => {
  const config = configOf([{ name: 'orders', paths: ['/orders'], weight: 30 }, { name: 'carts', paths: ['/carts'], weight: 0 }])
  const status: ContextStatus[] = [
    { name: 'orders', configuredWeight: 30, effectiveWeight: 30, override: null },
    { name: 'carts', configuredWeight: 0, effectiveWeight: 0, override: null }
  ]
  const latest: Sample = { at: 0, bounds: [], sides: new Map(), fallbacks: new Map(), shadow: new Map(), reloads: { success: 0, failure: 0 } }
  const data = boardData({ config, status, loadedAt: new Date(0), lastError: null, latest, window: null })
  t.equal(data.window, null)
  t.equal(data.traffic, null)
  t.equal(data.meanWeight, 15)
  t.strictSame(data.contexts.map(c => c.traffic), [null, null])
  t.strictSame(data.config, { hash: '000000000000', loadedAt: '1970-01-01T00:00:00.000Z', lastReload: 'ok', errors: [], reloads: { success: 0, failure: 0 } })

  const quiet = boardData({ config, status, loadedAt: new Date(0), lastError: null, latest, window: { seconds: 10, contexts: new Map(), rps: 0, newRps: 0 } })
  t.strictSame(quiet.traffic, { rps: 0, newRps: 0, unmatchedRps: 0, newShare: null }, 'a window without traffic has no share')
  t.equal(boardData({ config: configOf([]), status: [], loadedAt: new Date(0), lastError: null, latest, window: null }).meanWeight, null, 'no contexts, no mean')
})
