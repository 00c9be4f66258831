import type { IncomingHttpHeaders } from 'node:http'
import t from 'tap'
import { murmur3_32 } from '../../src/routing/murmur3.ts'
import { bucket, bucketAfter, bucketPrefix, cookieValue, stickyKey } from '../../src/routing/sticky.ts'

t.test('bucket is frozen: fixed (context, key) pairs keep their numbers', async t => {
  // Cross-checked against an independent Python implementation of murmur3.
  // If one of these changes, every user of every deployment changes side.
  t.equal(bucket('orders', 'user-1'), 7389)
  t.equal(bucket('orders', 'user-2'), 548)
  t.equal(bucket('orders', ''), 4931)
  t.equal(bucket('carts', 'user-1'), 176)
  t.equal(bucket('checkout', '42'), 8094)
  t.equal(bucket('a', 'b'), 6870)
  t.equal(bucket('orders', 'café ✓ 𝄞'), 6120)
})

t.test('bucket is murmur3 of utf8(name NUL key), seed 0, mod 10000', async t => {
  const bytes = new TextEncoder().encode('orders\0user-1')
  t.equal(bucket('orders', 'user-1'), murmur3_32(bytes, 0) % 10000)
})

t.test('the precomputed-prefix bucket equals the definition', async t => {
  const names = ['', 'a', 'ab', 'abc', 'abcd', 'orders', 'checkout-v2', 'émoji-✓']
  const keys = ['', 'x', 'user-1', 'user-12345678', 'é', '✓✓', '𝄞', 'a\ud800b', '\udc00', 'x'.repeat(2000)]
  let mismatches = 0
  for (const name of names) {
    const prefix = bucketPrefix(name)
    for (const key of keys) if (bucketAfter(prefix, key) !== bucket(name, key)) mismatches++
    for (let i = 0; i < 500; i++) {
      const key = `k${i}-${(i * 7919).toString(36)}`
      if (bucketAfter(prefix, key) !== bucket(name, key)) mismatches++
    }
  }
  t.equal(mismatches, 0)
})

t.test('stickyKey from a header', async t => {
  const sticky = { header: 'x-user-id' }
  t.equal(stickyKey(sticky, { 'x-user-id': 'u1' }), 'u1')
  t.equal(stickyKey(sticky, { 'x-user-id': ['u1', 'u2'] }), 'u1')
  t.equal(stickyKey(sticky, { 'x-user-id': '' }), undefined)
  t.equal(stickyKey(sticky, { 'x-user-id': [] }), undefined)
  t.equal(stickyKey(sticky, { 'x-user-id': ['', 'u2'] }), undefined)
  t.equal(stickyKey(sticky, {}), undefined)
  t.equal(stickyKey(sticky, { cookie: 'x-user-id=u1' }), undefined)
  t.equal(stickyKey({}, { 'x-user-id': 'u1' }), undefined, 'neither header nor cookie: no key')
})

t.test('stickyKey from a cookie', async t => {
  const sticky = { cookie: 'sid' }
  t.equal(stickyKey(sticky, { cookie: 'sid=abc' }), 'abc')
  t.equal(stickyKey(sticky, { cookie: 'a=1; sid=abc; b=2' }), 'abc')
  t.equal(stickyKey(sticky, { cookie: 'a=1;sid=abc;b=2' }), 'abc')
  t.equal(stickyKey(sticky, { cookie: '  sid = abc ; b=2' }), 'abc')
  t.equal(stickyKey(sticky, { cookie: 'sid="abc"' }), 'abc')
  t.equal(stickyKey(sticky, { cookie: 'sid=" abc "' }), ' abc ')
  t.equal(stickyKey(sticky, { cookie: 'sid="' }), '"')
  t.equal(stickyKey(sticky, { cookie: 'sid=a=b' }), 'a=b')
  t.equal(stickyKey(sticky, { cookie: 'xsid=1; sidx=2; sid=3' }), '3')
  t.equal(stickyKey(sticky, { cookie: 'sid=first; sid=second' }), 'first')
  t.equal(stickyKey(sticky, { cookie: 'sid; sid=abc' }), 'abc')
  t.equal(stickyKey(sticky, { cookie: 'other=sid=abc' }), undefined)
  t.equal(stickyKey(sticky, { cookie: 'SID=abc' }), undefined, 'names are case-sensitive')
  t.equal(stickyKey(sticky, { cookie: 'sid=' }), undefined)
  t.equal(stickyKey(sticky, { cookie: 'sid=""' }), undefined)
  t.equal(stickyKey(sticky, { cookie: 'sid=;x=1' }), undefined)
  t.equal(stickyKey(sticky, { cookie: '' }), undefined)
  t.equal(stickyKey(sticky, {}), undefined)
  t.equal(stickyKey(sticky, { 'x-sid': 'abc' }), undefined)
})

t.test('stickyKey across several cookie headers', async t => {
  const sticky = { cookie: 'sid' }
  t.equal(stickyKey(sticky, { cookie: ['a=1', 'b=2; sid=abc'] }), 'abc')
  t.equal(stickyKey(sticky, { cookie: ['sid=one', 'sid=two'] }), 'one')
  t.equal(stickyKey(sticky, { cookie: ['sid=', 'sid=two'] }), undefined, 'the first occurrence decides')
  t.equal(stickyKey(sticky, { cookie: ['a=1', 'b=2'] }), undefined)
})

t.test('stickyKey accepts Node IncomingHttpHeaders', async t => {
  const headers: IncomingHttpHeaders = { cookie: 'sid=abc', 'x-user-id': 'u9' }
  t.equal(stickyKey({ cookie: 'sid' }, headers), 'abc')
  t.equal(stickyKey({ header: 'x-user-id' }, headers), 'u9')
})

t.test('cookieValue tells present-but-empty from absent', async t => {
  t.equal(cookieValue('sid=', 'sid'), '')
  t.equal(cookieValue('a=1', 'sid'), undefined)
  t.equal(cookieValue('sid=\tv\t', 'sid'), 'v')
})

t.test('a UTF-8 key arriving as raw header bytes buckets like the text it encodes', async t => {
  const wire = Buffer.from('jürgen', 'utf8').toString('latin1')
  t.equal(stickyKey({ header: 'x-user-id' }, { 'x-user-id': wire }), 'jürgen')
  t.equal(stickyKey({ cookie: 'sid' }, { cookie: `sid=${wire}` }), 'jürgen')
})
