import t from 'tap'
import { pickSide } from '../../src/routing/split.ts'
import { bucket } from '../../src/routing/sticky.ts'
import { compileTable, type CompiledContext } from '../../src/routing/table.ts'
import { configOf } from '../fixtures/config.ts'

function orders (): CompiledContext {
  return compileTable(configOf([{ name: 'orders', paths: ['/api/orders'], weight: 30, sticky: { header: 'x-user-id' } }])).contexts[0]
}

const keys = Array.from({ length: 10000 }, (_, i) => `user-${i}`)

t.test('the same key always lands on the same side', async t => {
  const ctx = orders()
  for (const key of ['u1', 'user-42', 'é✓']) {
    const first = pickSide(ctx, 3000, key)
    for (let i = 0; i < 20; i++) t.equal(pickSide(ctx, 3000, key), first)
  }
})

t.test('the side of a key is its bucket against the weight', async t => {
  const ctx = orders()
  let mismatches = 0
  for (const key of keys) {
    const want = bucket('orders', key) < 2550 ? 'new' : 'legacy'
    if (pickSide(ctx, 2550, key) !== want) mismatches++
  }
  t.equal(mismatches, 0)
})

t.test('raising the weight 10 → 20 moves no key from new to legacy', async t => {
  const ctx = orders()
  let backwards = 0
  let forwards = 0
  for (const key of keys) {
    const before = pickSide(ctx, 1000, key)
    const after = pickSide(ctx, 2000, key)
    if (before === 'new' && after === 'legacy') backwards++
    if (before === 'legacy' && after === 'new') forwards++
  }
  t.equal(backwards, 0)
  t.ok(forwards > 800 && forwards < 1200, `about 10% moved to new (${forwards})`)
})

t.test('10,000 keys at weight 30 land 30% ± 2 on new', async t => {
  const ctx = orders()
  let onNew = 0
  for (const key of keys) if (pickSide(ctx, 3000, key) === 'new') onNew++
  t.ok(onNew >= 2800 && onNew <= 3200, `${onNew / 100}% on new`)
})

t.test('without a key the side is random at the weight', async t => {
  const ctx = orders()
  let onNew = 0
  for (let i = 0; i < 10000; i++) if (pickSide(ctx, 3000, undefined) === 'new') onNew++
  t.ok(onNew >= 2800 && onNew <= 3200, `${onNew / 100}% on new`)
})

t.test('weights 0 and 100 are exact, with and without a key', async t => {
  const ctx = orders()
  let wrong = 0
  for (const key of [...keys.slice(0, 2000), undefined, undefined, undefined]) {
    if (pickSide(ctx, 0, key) !== 'legacy') wrong++
    if (pickSide(ctx, 10000, key) !== 'new') wrong++
  }
  for (let i = 0; i < 2000; i++) {
    if (pickSide(ctx, 0, undefined) !== 'legacy') wrong++
    if (pickSide(ctx, 10000, undefined) !== 'new') wrong++
  }
  t.equal(wrong, 0)
})

t.test('a 0.01% weight sends exactly the keys in bucket 0', async t => {
  const ctx = orders()
  let mismatches = 0
  for (const key of keys) {
    if (pickSide(ctx, 1, key) !== (bucket('orders', key) === 0 ? 'new' : 'legacy')) mismatches++
  }
  t.equal(mismatches, 0)
})
