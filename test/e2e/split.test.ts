import t from 'tap'
import { proxy, routes, tally, upstream, whoAnswers } from '../helpers.ts'

t.test('weight 25 sends 25% ± 3 of 4,000 requests to new', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 25 }))
  const counts = await tally(`${p.base}/api/orders/1`, 4000)
  t.equal(counts.legacy + counts.new, 4000, 'every request answered by one of the two sides')
  t.ok(Math.abs(counts.new / 4000 - 0.25) <= 0.03, `new got ${counts.new} of 4000`)
})

t.test('weight 0 sends nothing to new, 100 nothing to legacy, unmatched goes to default', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const zero = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 0 }))
  t.same(await tally(`${zero.base}/api/orders`, 300), { legacy: 300 })
  const full = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 100 }))
  t.same(await tally(`${full.base}/api/orders/7?x=1`, 300), { new: 300 })
  t.same(await tally(`${full.base}/api/ordersx`, 20), { legacy: 20 }, 'a prefix matches on segment boundaries only')
  t.same(await tally(`${full.base}/`, 20), { legacy: 20 })
})

t.test('sticky header: one user always lands on one side, and the split follows the buckets', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 50, extra: '    sticky: { header: x-user-id }' }))
  for (const user of ['alice', 'bob', 'carol', 'dave']) {
    const counts = await tally(`${p.base}/api/orders`, 40, () => ({ 'x-user-id': user }), 4)
    t.equal(Object.values(counts)[0], 40, `${user} sees one side only: ${JSON.stringify(counts)}`)
  }
})

t.test('sticky cookie and the pinned bucket function decide the side', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const { bucket } = await import('../../src/routing/sticky.ts')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 30, extra: '    sticky: { cookie: sid }' }))
  for (let i = 0; i < 50; i++) {
    const sid = `session-${i}`
    const expected = bucket('orders', sid) < 3000 ? 'new' : 'legacy'
    t.equal(await whoAnswers(`${p.base}/api/orders`, { headers: { cookie: `theme=dark; sid=${sid}` } }), expected, sid)
  }
})

t.test('hosts and methods pick the context; reads can move first', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const reads = await upstream(t, 'reads')
  const p = await proxy(t, `server: { listen: 127.0.0.1:0, admin: 127.0.0.1:0 }
upstreams:
  monolith: { url: ${legacy.url} }
  orders-svc: { url: ${next.url} }
  reads-svc: { url: ${reads.url} }
default: monolith
contexts:
  orders:
    match: { paths: [/api/orders] }
    legacy: monolith
    new: orders-svc
    weight: 100
  order-reads:
    match: { paths: [/api/orders], methods: [GET] }
    legacy: monolith
    new: reads-svc
    weight: 100
  shop-orders:
    match: { paths: [/api/orders], hosts: [shop.example.com] }
    legacy: monolith
    new: monolith
    weight: 0
`)
  t.equal(await whoAnswers(`${p.base}/api/orders/1`), 'reads', 'GET goes to the context with methods')
  t.equal(await whoAnswers(`${p.base}/api/orders/1`, { method: 'POST' }), 'new', 'POST goes to the context without methods')
  t.equal(await whoAnswers(`${p.base}/api/orders/1`, { headers: { host: 'SHOP.example.com:8080' } }), 'legacy', 'a matching host beats both')
})
