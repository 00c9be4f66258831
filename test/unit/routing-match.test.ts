import t from 'tap'
import { matchContext, normalizeHost } from '../../src/routing/match.ts'
import { compileTable, type RoutingTable } from '../../src/routing/table.ts'
import { configOf, type ContextSpec } from '../fixtures/config.ts'

function table (...specs: ContextSpec[]): RoutingTable {
  return compileTable(configOf(specs))
}

const name = (tbl: RoutingTable, host: string, method: string, path: string) =>
  matchContext(tbl, host, method, path)?.name ?? null

t.test('normalizeHost', async t => {
  const cases: [string | undefined, string][] = [
    [undefined, ''],
    ['', ''],
    ['example.com', 'example.com'],
    ['Shop.Example.COM', 'shop.example.com'],
    ['example.com:8080', 'example.com'],
    ['Example.com.:443', 'example.com'],
    ['example.com.', 'example.com'],
    ['[::1]:8080', '[::1]'],
    ['[::1]', '[::1]'],
    ['[2001:DB8::1]:80', '[2001:db8::1]'],
    ['127.0.0.1:80', '127.0.0.1'],
    [':80', '']
  ]
  for (const [header, want] of cases) t.equal(normalizeHost(header), want, String(header))
})

t.test('a prefix matches itself and what lies below it on a segment boundary', async t => {
  const tbl = table({ name: 'orders', paths: ['/api/orders'] })
  for (const path of ['/api/orders', '/api/orders/', '/api/orders/7', '/api/orders/7/items', '/api/orders;jsessionid=1', '/api/orders;v=1/x']) {
    t.equal(name(tbl, '', 'GET', path), 'orders', path)
  }
  for (const path of ['/api/ordersx', '/api/orders.json', '/api/order', '/api', '/', '/api/ORDERS', '/x/api/orders']) {
    t.equal(name(tbl, '', 'GET', path), null, path)
  }
})

t.test('/ matches every path', async t => {
  const tbl = table({ name: 'all', paths: ['/'] })
  for (const path of ['/', '/x', '/api/orders/7', '/;x']) t.equal(name(tbl, '', 'GET', path), 'all', path)
})

t.test('the longest matching prefix wins', async t => {
  const tbl = table(
    { name: 'root', paths: ['/'] },
    { name: 'api', paths: ['/api'] },
    { name: 'orders', paths: ['/api/orders'] },
    { name: 'items', paths: ['/api/orders/items'] },
    { name: 'carts', paths: ['/api/carts', '/shop/carts'] }
  )
  const cases: [string, string][] = [
    ['/', 'root'],
    ['/other', 'root'],
    ['/apix', 'root'],
    ['/api', 'api'],
    ['/api/', 'api'],
    ['/api/ordersx', 'api'],
    ['/api/orders', 'orders'],
    ['/api/orders/7', 'orders'],
    ['/api/orders/items', 'items'],
    ['/api/orders/items/3', 'items'],
    ['/api/orders/items;x', 'items'],
    ['/api/orders/itemsx', 'orders'],
    ['/api/carts/1', 'carts'],
    ['/shop/carts', 'carts'],
    ['/shop', 'root']
  ]
  for (const [path, want] of cases) t.equal(name(tbl, '', 'GET', path), want, path)
})

t.test('for the same prefix a context with hosts beats one without', async t => {
  const tbl = table(
    { name: 'any', paths: ['/api'] },
    { name: 'shop', paths: ['/api'], hosts: ['shop.example.com'] },
    { name: 'wild', paths: ['/api'], hosts: ['*.example.com'] }
  )
  t.equal(name(tbl, 'shop.example.com', 'GET', '/api'), 'shop', 'exact beats wildcard and none')
  t.equal(name(tbl, 'a.example.com', 'GET', '/api'), 'wild')
  t.equal(name(tbl, 'a.b.example.com', 'GET', '/api'), 'wild', 'a wildcard covers several labels')
  t.equal(name(tbl, 'example.com', 'GET', '/api'), 'any', '*.example.com does not cover example.com')
  t.equal(name(tbl, 'badexample.com', 'GET', '/api'), 'any')
  t.equal(name(tbl, 'other.org', 'GET', '/api'), 'any')
  t.equal(name(tbl, '', 'GET', '/api'), 'any')
})

t.test('the most specific wildcard wins', async t => {
  const tbl = table(
    { name: 'broad', paths: ['/'], hosts: ['*.example.com'] },
    { name: 'narrow', paths: ['/'], hosts: ['*.eu.example.com'] }
  )
  t.equal(name(tbl, 'shop.eu.example.com', 'GET', '/'), 'narrow')
  t.equal(name(tbl, 'eu.example.com', 'GET', '/'), 'broad')
  t.equal(name(tbl, 'shop.us.example.com', 'GET', '/'), 'broad')
})

t.test('a context whose hosts do not match does not match at all', async t => {
  const tbl = table(
    { name: 'root', paths: ['/'] },
    { name: 'shop-orders', paths: ['/api/orders'], hosts: ['shop.example.com'] }
  )
  t.equal(name(tbl, 'shop.example.com', 'GET', '/api/orders/1'), 'shop-orders')
  t.equal(name(tbl, 'admin.example.com', 'GET', '/api/orders/1'), 'root', 'falls back to a shorter prefix')
  const only = table({ name: 'shop-orders', paths: ['/api/orders'], hosts: ['shop.example.com'] })
  t.equal(name(only, 'admin.example.com', 'GET', '/api/orders/1'), null)
})

t.test('a context with methods beats one without; it matches only its methods', async t => {
  const tbl = table(
    { name: 'orders-legacy', paths: ['/api/orders'] },
    { name: 'orders-reads', paths: ['/api/orders'], methods: ['GET'] }
  )
  t.equal(name(tbl, '', 'GET', '/api/orders/7'), 'orders-reads')
  t.equal(name(tbl, '', 'POST', '/api/orders/7'), 'orders-legacy')
  t.equal(name(tbl, '', 'HEAD', '/api/orders/7'), 'orders-legacy', 'HEAD is not GET')
  const only = table({ name: 'orders-reads', paths: ['/api/orders'], methods: ['GET', 'POST'] })
  t.equal(name(only, '', 'POST', '/api/orders'), 'orders-reads')
  t.equal(name(only, '', 'DELETE', '/api/orders'), null)
  t.equal(name(only, '', 'HEAD', '/api/orders'), null)
})

t.test('host ranks above method at the same prefix', async t => {
  const tbl = table(
    { name: 'reads', paths: ['/api'], methods: ['GET'] },
    { name: 'shop', paths: ['/api'], hosts: ['shop.example.com'] },
    { name: 'shop-writes', paths: ['/api'], hosts: ['shop.example.com'], methods: ['POST'] }
  )
  t.equal(name(tbl, 'shop.example.com', 'GET', '/api'), 'shop')
  t.equal(name(tbl, 'shop.example.com', 'POST', '/api'), 'shop-writes')
  t.equal(name(tbl, 'other.com', 'GET', '/api'), 'reads')
  t.equal(name(tbl, 'other.com', 'POST', '/api'), null)
})

t.test('an exact host whose methods miss falls to the wildcard, then to no host', async t => {
  const tbl = table(
    { name: 'exact-get', paths: ['/api'], hosts: ['a.example.com'], methods: ['GET'] },
    { name: 'wild-post', paths: ['/api'], hosts: ['*.example.com'], methods: ['POST'] },
    { name: 'any', paths: ['/api'] }
  )
  t.equal(name(tbl, 'a.example.com', 'GET', '/api'), 'exact-get')
  t.equal(name(tbl, 'a.example.com', 'POST', '/api'), 'wild-post')
  t.equal(name(tbl, 'a.example.com', 'PUT', '/api'), 'any')
})

t.test('a longer prefix beats host and method specificity at a shorter one', async t => {
  const tbl = table(
    { name: 'specific', paths: ['/api'], hosts: ['shop.example.com'], methods: ['GET'] },
    { name: 'longer', paths: ['/api/orders'] }
  )
  t.equal(name(tbl, 'shop.example.com', 'GET', '/api/orders'), 'longer')
  t.equal(name(tbl, 'shop.example.com', 'GET', '/api/carts'), 'specific')
})

t.test('the table resolves upstreams, weights and names', async t => {
  const tbl = table(
    { name: 'orders', paths: ['/api/orders'], weight: 12.34, rewrite: { new: { stripPrefix: '/api' } } },
    { name: 'carts', paths: ['/api/carts'], weight: 100 }
  )
  const orders = tbl.byName.get('orders')!
  t.equal(orders.index, 0)
  t.equal(orders.weightBp, 1234)
  t.equal(orders.legacy.name, 'monolith')
  t.equal(orders.new.name, 'svc')
  t.same(orders.rewrite, { legacy: undefined, new: { stripPrefix: '/api' } })
  t.equal(tbl.byName.get('carts')!.weightBp, 10000)
  t.equal(tbl.defaultUpstream.name, 'monolith')
  t.equal(tbl.contexts.length, 2)
  t.ok(Object.isFrozen(tbl) && Object.isFrozen(tbl.contexts) && Object.isFrozen(orders) && Object.isFrozen(orders.rewrite))
  t.equal(table({ name: 'w', paths: ['/'], weight: 0.29 }).contexts[0].weightBp, 29, 'no float drift')
  t.equal(table({ name: 'w', paths: ['/'], weight: 57.01 }).contexts[0].weightBp, 5701)
})

t.test('contexts claiming the same host, prefix and method are refused', async t => {
  t.throws(() => table({ name: 'a', paths: ['/api'] }, { name: 'b', paths: ['/api'] }))
  t.throws(() => table({ name: 'a', paths: ['/api'], methods: ['GET'] }, { name: 'b', paths: ['/api'], methods: ['POST', 'GET'] }))
  t.throws(() => table({ name: 'a', paths: ['/'], hosts: ['*.x.com'] }, { name: 'b', paths: ['/'], hosts: ['*.x.com'] }))
  t.throws(() => table({ name: 'a', paths: ['/api'], new: 'nowhere' }), /unknown upstream nowhere/)
  t.doesNotThrow(() => table({ name: 'a', paths: ['/api', '/api'], hosts: ['x.com', 'x.com'], methods: ['GET', 'GET'] }))
})

t.test('10,000 contexts compile and match like 2 (speed is measured in bench/routing.ts, not here)', async t => {
  const specs: ContextSpec[] = []
  for (let i = 0; i < 10000; i++) {
    specs.push({
      name: `svc-${i}`,
      paths: [`/svc/${i}`, `/v2/svc/${i}/api`],
      hosts: i % 3 === 0 ? [`h${i}.example.com`, '*.wild.example.com'] : null,
      methods: i % 5 === 0 ? ['GET', 'POST'] : null
    })
  }
  const tbl = table(...specs)
  t.equal(name(tbl, 'any.host', 'GET', '/svc/1/orders/7'), 'svc-1')
  t.equal(name(tbl, 'any.host', 'GET', '/svc/9999'), null, 'hosts do not match')
  t.equal(name(tbl, 'h9999.example.com', 'GET', '/svc/9999'), 'svc-9999')
  t.equal(name(tbl, 'x.wild.example.com', 'GET', '/v2/svc/3/api/x'), 'svc-3')
  t.equal(name(tbl, 'x.wild.example.com', 'PUT', '/v2/svc/15/api/x'), null, 'methods do not match')
  t.equal(name(tbl, 'any.host', 'GET', '/svc/10000'), null)
  t.equal(name(tbl, 'any.host', 'GET', '/svc'), null)
})
