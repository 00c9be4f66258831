import { createRequire } from 'node:module'
import t from 'tap'
import { Pool } from '../../src/proxy/upstreams.ts'

const require = createRequire(import.meta.url)
const undiciIndex = require.resolve('undici')

t.test('the proxy does not load the whole of undici', async t => {
  await import('../../src/main.ts')
  t.notOk(undiciIndex in require.cache, 'undici/index.js is not loaded by src/main.ts and what it imports')
})

t.test('the pool loaded from undici/lib is the class undici exports', async t => {
  // An undici upgrade that moves lib/dispatcher/pool.js fails here, not in production.
  t.equal(Pool, require('undici').Pool)
})
