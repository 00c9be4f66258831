import t from 'tap'
import { forwardPath } from '../../src/routing/rewrite.ts'
import type { Upstream } from '../../src/types.ts'

const at = (basePath: string): Upstream => ({
  name: 'svc',
  origin: 'http://svc:80',
  basePath,
  host: 'svc',
  timeoutMs: 30000,
  bodyTimeoutMs: 30000,
  maxConnections: 64,
  queueTimeoutMs: 10000,
  preserveHost: false
})

t.test('without a rewrite the path and query go as they are', async t => {
  t.equal(forwardPath(at(''), undefined, '/api/orders/7', ''), '/api/orders/7')
  t.equal(forwardPath(at(''), undefined, '/api/orders/7', '?x=1'), '/api/orders/7?x=1')
  t.equal(forwardPath(at(''), {}, '/', ''), '/')
  t.equal(forwardPath(at(''), {}, '/', '?'), '/?')
})

t.test('the upstream base path goes first', async t => {
  t.equal(forwardPath(at('/legacy'), undefined, '/api/orders', '?x=1'), '/legacy/api/orders?x=1')
  t.equal(forwardPath(at('/legacy'), undefined, '/', ''), '/legacy/')
})

t.test('stripPrefix is removed only on a segment boundary', async t => {
  const strip = { stripPrefix: '/api' }
  t.equal(forwardPath(at(''), strip, '/api/orders/7', ''), '/orders/7')
  t.equal(forwardPath(at(''), strip, '/api', ''), '/')
  t.equal(forwardPath(at(''), strip, '/api', '?x=1'), '/?x=1')
  t.equal(forwardPath(at(''), strip, '/api/', ''), '/')
  t.equal(forwardPath(at(''), strip, '/api;v=1/orders', ''), '/;v=1/orders')
  t.equal(forwardPath(at(''), strip, '/apix/orders', ''), '/apix/orders')
  t.equal(forwardPath(at(''), strip, '/other/api', ''), '/other/api')
  t.equal(forwardPath(at(''), { stripPrefix: '/api/orders' }, '/api/orders', ''), '/')
  t.equal(forwardPath(at(''), { stripPrefix: '/' }, '/api/orders', ''), '/api/orders')
})

t.test('addPrefix goes after the base path and before the stripped path', async t => {
  t.equal(forwardPath(at(''), { addPrefix: '/v2' }, '/orders/7', ''), '/v2/orders/7')
  t.equal(forwardPath(at('/base'), { stripPrefix: '/api', addPrefix: '/v2' }, '/api/orders/7', '?q'), '/base/v2/orders/7?q')
  t.equal(forwardPath(at('/base'), { stripPrefix: '/api', addPrefix: '/v2' }, '/api', ''), '/base/v2/')
})

t.test('never an empty path, never // at the join', async t => {
  t.equal(forwardPath(at(''), { addPrefix: '/' }, '/orders', ''), '/orders')
  t.equal(forwardPath(at(''), { addPrefix: '/v2/' }, '/orders', ''), '/v2/orders')
  t.equal(forwardPath(at('/base'), { addPrefix: '/' }, '/', ''), '/base/')
  t.equal(forwardPath(at(''), { stripPrefix: '/api' }, '', ''), '/')
  t.equal(forwardPath(at(''), undefined, '', '?x'), '/?x')
})
