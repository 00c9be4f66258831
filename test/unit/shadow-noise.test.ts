import { createHash } from 'node:crypto'
import t from 'tap'
import { compare, endpointOf, fieldPatterns, Noise, resultOf, type Captured } from '../../src/shadow/compare.ts'

function answer (body: string, contentType = 'text/plain', status = 200, headers: Record<string, string> = {}): Captured {
  const bytes = Buffer.from(body)
  return { status, headers: { 'content-type': contentType, ...headers }, body: bytes, truncated: false, size: bytes.length, hash: createHash('sha256').update(bytes).digest('hex') }
}

const none = fieldPatterns([])

/** Learns from legacy answering `first` then `again`; returns whether its body varied as a whole. */
function learn (noise: Noise, first: Captured, again: Captured, headers: string[] = []): boolean {
  return noise.learn(compare(first, again, headers, none))
}

function judge (legacy: Captured, next: Captured, noise: Noise, bodyVaries: boolean, headers: string[] = []): { result: string; paths: string[] } {
  const differences = compare(legacy, next, headers, none, noise)
  return { result: resultOf(differences, bodyVaries), paths: differences.map(d => d.path) }
}

t.test('the issue: a plain-text body legacy does not reproduce is noisy, never a match, and nothing is learned at body', async t => {
  const noise = new Noise()
  const varied = learn(noise, answer('now 1700000001'), answer('now 1700000002'))
  t.equal(varied, true)
  t.strictSame(noise.fields, [], 'no field noise: the whole body is not a field')
  t.strictSame(judge(answer('now 1700000003'), answer('something else 1'), noise, varied), { result: 'noisy', paths: ['body'] })
  t.strictSame(judge(answer('now 1700000003'), answer('now 1700000003'), noise, varied), { result: 'match', paths: [] }, 'equal bytes are verified')
  t.strictSame(judge(answer('now 1700000003'), answer('now 1700000003', 'text/plain', 500), noise, varied), { result: 'mismatch', paths: ['status'] }, 'a status difference is always a mismatch')
})

t.test('a body legacy reproduces but new does not is a mismatch', async t => {
  const noise = new Noise()
  const varied = learn(noise, answer('hello'), answer('hello'))
  t.equal(varied, false)
  t.strictSame(judge(answer('hello'), answer('bye'), noise, varied), { result: 'mismatch', paths: ['body'] })
})

t.test('JSON sent as text/plain: a field legacy does not reproduce is learned and ignored, any other difference counts', async t => {
  const noise = new Noise()
  const varied = learn(noise, answer('{"id":1,"total":5,"time":100}'), answer('{"id":1,"total":5,"time":101}'))
  t.equal(varied, false, 'the body did not vary as a whole: its fields were compared')
  t.strictSame(noise.fields, ['time'])
  const legacy = answer('{"id":1,"total":5,"time":102}')
  t.strictSame(judge(legacy, answer('{"id":1,"total":5,"time":999}'), noise, varied), { result: 'match', paths: [] })
  t.strictSame(judge(legacy, answer('{"id":1,"total":6,"time":999}'), noise, varied), { result: 'mismatch', paths: ['body.total'] })
  t.strictSame(judge(legacy, answer('{"id":1,"total":5,"time":"2026-01-01T00:00:00Z"}'), noise, varied), { result: 'mismatch', paths: ['body.time'] }, 'a learned number does not hide a string')
  t.strictSame(judge(legacy, answer('{"id":1,"total":5}'), noise, varied), { result: 'mismatch', paths: ['body.time'] }, 'nor a missing field')
  t.strictSame(judge(legacy, answer('{"id":1,"total":5,"time":{"s":1}}'), noise, varied), { result: 'mismatch', paths: ['body.time'] }, 'nor an object in its place')
})

t.test('a field legacy itself sometimes omits or nulls is noise for those kinds only', async t => {
  const noise = new Noise()
  learn(noise, answer('{"a":1,"cursor":"x"}'), answer('{"a":1}'))
  learn(noise, answer('{"a":1,"cursor":null}'), answer('{"a":1,"cursor":"y"}'))
  t.strictSame(noise.fields, ['cursor'])
  const legacy = answer('{"a":1,"cursor":"z"}')
  t.strictSame(judge(legacy, answer('{"a":1}'), noise, false).result, 'match')
  t.strictSame(judge(legacy, answer('{"a":1,"cursor":null}'), noise, false).result, 'match')
  t.strictSame(judge(legacy, answer('{"a":1,"cursor":7}'), noise, false).paths, ['body.cursor'])
})

t.test('array elements generalise to *; whole elements or objects that differ are never learned', async t => {
  const noise = new Noise()
  learn(noise, answer('{"items":[{"sku":"a","at":1},{"sku":"b","at":1}]}'), answer('{"items":[{"sku":"a","at":2},{"sku":"b","at":3}]}'))
  t.strictSame(noise.fields, ['items.*.at'])
  learn(noise, answer('{"items":[{"sku":"a","at":1}],"meta":{"n":1}}'), answer('{"items":[{"sku":"a","at":1},{"sku":"c","at":1}],"meta":null}'))
  t.strictSame(noise.fields, ['items.*.at'], 'items.1 (an object) and meta (object vs null) are not fields')
  const legacy = answer('{"items":[{"sku":"a","at":5}],"meta":{"n":1}}')
  t.strictSame(judge(legacy, answer('{"items":[{"sku":"a","at":9}],"meta":{"n":1}}'), noise, false).result, 'match')
  t.strictSame(judge(legacy, answer('{"items":[{"sku":"z","at":9}],"meta":{"n":1}}'), noise, false).paths, ['body.items.0.sku'])
  t.strictSame(judge(legacy, answer('{"items":[{"sku":"a","at":5},{"sku":"b","at":5}],"meta":{"n":1}}'), noise, false).paths, ['body.items.1'])
  t.strictSame(judge(legacy, answer('{"items":[{"sku":"a","at":5}],"meta":null}'), noise, false).paths, ['body.meta'])
})

t.test('a learned JSON field named body never hides the whole body, nor a header field', async t => {
  const noise = new Noise()
  learn(noise, answer('{"body":1}'), answer('{"body":2}'))
  t.strictSame(noise.fields, ['body'])
  t.strictSame(judge(answer('legacy text'), answer('new text'), noise, false), { result: 'mismatch', paths: ['body'] })
  t.strictSame(judge(answer('{"body":1}'), answer('{"body":3}'), noise, false), { result: 'match', paths: [] })
})

t.test('a JSON scalar body legacy does not reproduce is a whole-body difference: noisy, not learned', async t => {
  const noise = new Noise()
  const varied = learn(noise, answer('1', 'application/json'), answer('2', 'application/json'))
  t.equal(varied, true)
  t.strictSame(noise.fields, [])
  t.strictSame(judge(answer('3', 'application/json'), answer('4', 'application/json'), noise, varied), { result: 'noisy', paths: ['body'] })
})

t.test('headers: a value legacy does not reproduce is learned; a header new drops is still a difference', async t => {
  const noise = new Noise()
  learn(noise, answer('{}', 'application/json', 200, { etag: '"1"' }), answer('{}', 'application/json', 200, { etag: '"2"' }), ['etag'])
  t.strictSame(noise.fields, ['header:etag'])
  const legacy = answer('{}', 'application/json', 200, { etag: '"3"' })
  t.strictSame(judge(legacy, answer('{}', 'application/json', 200, { etag: '"x"' }), noise, false, ['etag']).result, 'match')
  t.strictSame(judge(legacy, answer('{}', 'application/json', 200), noise, false, ['etag']).paths, ['header:etag'])
})

t.test('two legacy answers with different statuses teach nothing: a blip is not noise', async t => {
  const noise = new Noise()
  t.equal(learn(noise, answer('a'), answer('b', 'text/plain', 503)), false)
  t.equal(learn(noise, answer('{"id":1,"total":5}', 'application/json', 200, { etag: '1' }), answer('{"error":"busy"}', 'application/json', 503), ['etag']), false)
  t.strictSame(noise.fields, [])
  t.strictSame(judge(answer('{"id":1,"total":5}'), answer('{"id":1,"total":5,"error":"x"}'), noise, false).paths, ['body.error'])
})

t.test('a status difference is always a mismatch, and so is a whole-body difference beside any finer difference', async t => {
  const noise = new Noise()
  t.strictSame(judge(answer('a'), answer('c', 'text/plain', 503), noise, true), { result: 'mismatch', paths: ['status', 'body'] })
  t.strictSame(judge(answer('a', 'text/plain', 200, { etag: '1' }), answer('c', 'text/plain', 200, { etag: '2' }), noise, true, ['etag']), { result: 'mismatch', paths: ['header:etag', 'body'] })
})

t.test('bodies over the capture limit: noisy when legacy\'s own hash varies, a mismatch when it does not', async t => {
  const big = (hash: string): Captured => ({ status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.alloc(0), truncated: true, size: 300_000, hash })
  const noise = new Noise()
  t.equal(learn(noise, big('a'.repeat(64)), big('a'.repeat(64))), false)
  t.strictSame(judge(big('a'.repeat(64)), big('c'.repeat(64)), noise, false).result, 'mismatch')
  t.equal(learn(noise, big('a'.repeat(64)), big('b'.repeat(64))), true)
  t.strictSame(judge(big('a'.repeat(64)), big('c'.repeat(64)), noise, true).result, 'noisy')
  t.strictSame(judge(big('a'.repeat(64)), big('a'.repeat(64)), noise, true).result, 'match')
})

t.test('compare.ignore hides a whole subtree; learned noise only the leaf it was learned at', async t => {
  const legacy = answer('{"meta":{"at":1}}')
  const next = answer('{"meta":{"at":1,"extra":true}}')
  t.strictSame(compare(legacy, next, [], fieldPatterns(['meta'])), [])
  const noise = new Noise()
  learn(noise, answer('{"meta":{"at":1}}'), answer('{"meta":{"at":2}}'))
  t.strictSame(noise.fields, ['meta.at'])
  t.strictSame(compare(legacy, next, [], none, noise).map(d => d.path), ['body.meta.extra'])
})

t.test('no more than 100 fields are learned', async t => {
  const noise = new Noise()
  const obj = (v: number): string => JSON.stringify(Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`f${i}`, v])))
  for (let round = 0; round < 10; round++) {
    const a = JSON.parse(obj(0))
    const b = JSON.parse(obj(1))
    for (const k of Object.keys(a)) {
      a[`${k}r${round}`] = a[k]
      b[`${k}r${round}`] = b[k]
      delete a[k]
      delete b[k]
    }
    learn(noise, answer(JSON.stringify(a)), answer(JSON.stringify(b)))
  }
  t.equal(noise.fields.length, 100)
})

t.test('endpoints: the method and the path, with every segment holding a digit as *', async t => {
  t.equal(endpointOf('GET', '/api/orders/42/items'), 'GET /api/orders/*/items')
  t.equal(endpointOf('GET', '/api/v2/users/ord_9f3a'), 'GET /api/*/users/*')
  t.equal(endpointOf('HEAD', '/'), 'HEAD /')
  t.equal(endpointOf('GET', `/${'a'.repeat(500)}`).length, 4 + 200, 'kept short')
})
