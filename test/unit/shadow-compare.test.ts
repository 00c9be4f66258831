import { createHash } from 'node:crypto'
import t from 'tap'
import { compare, fieldPatterns, type Captured } from '../../src/shadow/compare.ts'

function answer (body: string, contentType?: string, status = 200, headers: Record<string, string> = {}): Captured {
  const bytes = Buffer.from(body)
  return {
    status,
    headers: { ...(contentType === undefined ? {} : { 'content-type': contentType }), ...headers },
    body: bytes,
    truncated: false,
    size: bytes.length,
    hash: createHash('sha256').update(bytes).digest('hex')
  }
}

const none = fieldPatterns([])

t.test('JSON is found by parsing when the content type is absent or generic, and compared field by field', async t => {
  for (const type of [undefined, 'text/plain', 'text/plain; charset=utf-8', 'application/octet-stream', 'binary/octet-stream', 'TEXT/PLAIN']) {
    t.strictSame(compare(answer('{"id":1,"total":5}', type), answer('{"id":1,"total":6}', type), [], none), [
      { path: 'body.total', legacy: 5, new: 6 }
    ], `content type ${String(type)}`)
    t.strictSame(compare(answer('[{"id":1}]', type), answer(' [ {"id": 1} ]\n', type), [], none), [], `equal JSON, different bytes: ${String(type)}`)
  }
})

t.test('JSON by its content type: application/json, text/json, and any +json suffix, with parameters', async t => {
  for (const type of ['application/json', 'application/json; charset=utf-8', 'text/json', 'application/problem+json', 'application/vnd.api+json; ext=bulk', 'Application/HAL+JSON']) {
    t.strictSame(compare(answer('{"a":{"b":1}}', type), answer('{"a":{"b":2}}', type), [], none), [
      { path: 'body.a.b', legacy: 1, new: 2 }
    ], type)
  }
})

t.test('the two sides may declare JSON differently: what is compared is the data', async t => {
  t.strictSame(compare(answer('{"a":1}', 'text/plain'), answer('{"a":1}', 'application/json'), [], none), [])
  t.strictSame(compare(answer('{"a":1}'), answer('{"a":2}', 'application/problem+json'), [], none), [{ path: 'body.a', legacy: 1, new: 2 }])
})

t.test('compare.ignore applies to JSON whatever its content type', async t => {
  const ignore = fieldPatterns(['time', 'items.*.at'])
  const legacy = answer('{"id":1,"time":100,"items":[{"sku":"a","at":1}]}', 'text/plain')
  t.strictSame(compare(legacy, answer('{"id":1,"time":200,"items":[{"sku":"a","at":2}]}', 'text/plain'), [], ignore), [])
  t.strictSame(compare(legacy, answer('{"id":2,"time":200,"items":[{"sku":"a","at":2}]}'), [], ignore), [{ path: 'body.id', legacy: 1, new: 2 }])
})

t.test('bodies that are not JSON objects or arrays are compared whole, as bytes', async t => {
  const whole = (a: Captured, b: Captured): string[] => compare(a, b, [], none).map(d => d.path)
  t.strictSame(whole(answer('now 12:00:01', 'text/plain'), answer('now 12:00:02', 'text/plain')), ['body'], 'plain text')
  t.strictSame(whole(answer('{"a":1}', 'text/html'), answer('{"a":2}', 'text/html')), ['body'], 'a specific non-JSON type is never parsed')
  t.strictSame(whole(answer('1700000000', 'text/plain'), answer('1700000001', 'text/plain')), ['body'], 'a bare number in a generic type is text')
  t.strictSame(whole(answer('{"a":1', 'application/json'), answer('{"a":2', 'application/json')), ['body'], 'declared JSON that does not parse')
  t.strictSame(whole(answer('{"a":1}', 'application/json'), answer('<html>', 'text/html')), ['body'], 'JSON on one side only')
  t.strictSame(whole(answer('1', 'application/json'), answer('2', 'application/json')), ['body'], 'declared JSON whose value is a scalar: the whole body differs')
  t.strictSame(compare(answer('same', 'text/plain'), answer('same', 'text/plain'), [], none), [])
  const d = compare(answer('legacy says hi', 'text/plain'), answer('new says hello', 'text/plain'), [], none)
  t.match(d, [{ path: 'body', legacy: /^14 bytes, sha256 [0-9a-f]{12}: "legacy says hi"$/, new: /^14 bytes, sha256 [0-9a-f]{12}: "new says hello"$/ }])
})

t.test('ignore never reaches the whole body: a JSON field named body is not the body', async t => {
  const ignore = fieldPatterns(['body'])
  t.strictSame(compare(answer('{"body":1,"x":1}'), answer('{"body":2,"x":1}'), [], ignore), [], 'the field is ignored')
  t.strictSame(compare(answer('legacy', 'text/plain'), answer('new', 'text/plain'), [], ignore).map(d => d.path), ['body'], 'the whole body still counts')
})

t.test('truncated bodies are compared by hash only, never parsed', async t => {
  const big = (hash: string): Captured => ({ status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.alloc(0), truncated: true, size: 300_000, hash })
  t.strictSame(compare(big('a'.repeat(64)), big('a'.repeat(64)), [], none), [])
  t.strictSame(compare(big('a'.repeat(64)), big('b'.repeat(64)), [], none), [
    { path: 'body', legacy: `300000 bytes, over the capture limit, sha256 ${'a'.repeat(12)}`, new: `300000 bytes, over the capture limit, sha256 ${'b'.repeat(12)}` }
  ])
})

t.test('status and the named headers are compared whatever the body', async t => {
  t.strictSame(compare(answer('{"a":1}', 'text/plain', 200, { etag: '"1"' }), answer('{"a":1}', 'text/plain', 503, { etag: '"2"' }), ['etag'], none), [
    { path: 'status', legacy: 200, new: 503 },
    { path: 'header:etag', legacy: '"1"', new: '"2"' }
  ])
})
