import t from 'tap'
import { canonicalize } from '../../src/routing/path.ts'

const ok = (raw: string, path: string, query = '') => [raw, { path, query }] as const
const bad = (raw: string) => [raw, null] as const

t.test('clean paths come back as they are', async t => {
  for (const [raw, want] of [
    ok('/', '/'),
    ok('/api/orders', '/api/orders'),
    ok('/api/orders/', '/api/orders/'),
    ok('/api/orders.', '/api/orders.'),
    ok('/api/orders..', '/api/orders..'),
    ok('/api/.well-known', '/api/.well-known'),
    ok('/api/...', '/api/...'),
    ok('/api/orders;jsessionid=1', '/api/orders;jsessionid=1'),
    ok("/a-b_c~d!$&'()*+,=:@", "/a-b_c~d!$&'()*+,=:@")
  ]) {
    t.same(canonicalize(raw), want, raw)
  }
})

t.test('the query is split at the first ? and kept verbatim', async t => {
  for (const [raw, want] of [
    ok('/?', '/', '?'),
    ok('/api?x=1', '/api', '?x=1'),
    ok('/api?x=%2F..%00#frag?y', '/api', '?x=%2F..%00#frag?y'),
    ok('/%61pi?q=%61', '/api', '?q=%61'),
    ok('//api//x?a//b', '/api/x', '?a//b')
  ]) {
    t.same(canonicalize(raw), want, raw)
  }
})

t.test('a target that is not a path is refused', async t => {
  for (const [raw, want] of [bad(''), bad('*'), bad('api/orders'), bad('http://evil/api'), bad('?x')]) {
    t.equal(canonicalize(raw), want, JSON.stringify(raw))
  }
})

t.test('dot segments are refused, however spelled', async t => {
  for (const [raw, want] of [
    bad('/.'),
    bad('/..'),
    bad('/./'),
    bad('/api/../admin'),
    bad('/api/./admin'),
    bad('/api/..'),
    bad('/api/.'),
    bad('/api/%2e%2e/admin'),
    bad('/api/%2E%2E/admin'),
    bad('/api/.%2E/x'),
    bad('/api/%2e./x'),
    bad('/api/%2e/x'),
    bad('/api/..;/x'),
    bad('/api/.;x/y'),
    bad('/api/..;jsessionid=1'),
    bad('/api/%2e%2e;/x'),
    bad('/api/..%3b/x'),
    bad('/api/..%3B/x'),
    bad('/api//../admin'),
    bad('/api/..?x=1')
  ]) {
    t.equal(canonicalize(raw), want, raw)
  }
})

t.test('encoded separators, NUL and control bytes are refused', async t => {
  for (const [raw, want] of [
    bad('/api%2Fadmin'),
    bad('/api%2fadmin'),
    bad('/api%5Cadmin'),
    bad('/api%5cadmin'),
    bad('/api%00'),
    bad('/api%0a'),
    bad('/api%0D%0A'),
    bad('/api%1F'),
    bad('/api%7F'),
    bad('/api%7f')
  ]) {
    t.equal(canonicalize(raw), want, raw)
  }
})

t.test('malformed escapes are refused', async t => {
  for (const [raw, want] of [bad('/a%zz'), bad('/a%4'), bad('/a%'), bad('/a%4?x'), bad('/a%?x'), bad('/a%g0'), bad('/a%0g')]) {
    t.equal(canonicalize(raw), want, raw)
  }
})

t.test('raw backslash, control bytes and # are refused', async t => {
  for (const [raw, want] of [
    bad('/api\\admin'),
    bad('/api\\..\\admin'),
    bad('/api\x00'),
    bad('/api\tx'),
    bad('/api\r\nx'),
    bad('/api\x7f'),
    bad('/api#frag'),
    bad('/api\u0100')
  ]) {
    t.equal(canonicalize(raw), want, JSON.stringify(raw))
  }
})

t.test('escapes of unreserved characters are decoded', async t => {
  for (const [raw, want] of [
    ok('/%61pi', '/api'),
    ok('/%41%5A%61%7A%30%39%2D%2E%5F%7E', '/AZaz09-._~'),
    ok('/api/orders%2e', '/api/orders.'),
    ok('/api/%2e%2e%2e', '/api/...'),
    ok('/api/%2ewell-known', '/api/.well-known')
  ]) {
    t.same(canonicalize(raw), want, raw)
  }
})

t.test('other escapes are kept, with upper-case hex', async t => {
  for (const [raw, want] of [
    ok('/a%20b', '/a%20b'),
    ok('/%E2%9C%93', '/%E2%9C%93'),
    ok('/%e2%9c%93', '/%E2%9C%93'),
    ok('/%e2%9C%93', '/%E2%9C%93'),
    ok('/a%3b..', '/a%3B..'),
    ok('/a%3Fb', '/a%3Fb'),
    ok('/a%23b', '/a%23b'),
    ok('/a%25', '/a%25'),
    ok('/api/%252e%252e/admin', '/api/%252e%252e/admin'),
    ok('/api/%252E', '/api/%252E'),
    ok('/a%80', '/a%80'),
    ok('/a%ff', '/a%FF')
  ]) {
    t.same(canonicalize(raw), want, raw)
  }
})

t.test('raw bytes above 0x7E and raw spaces are percent-encoded', async t => {
  // Node's req.url holds one latin1 char per byte: ✓ arrives as E2 9C 93.
  const check = Buffer.from('/caf\u00e9/\u2713', 'utf8').toString('latin1')
  for (const [raw, want] of [
    ok(check, '/caf%C3%A9/%E2%9C%93'),
    ok('/\u00ff', '/%FF'),
    ok('/\u0080x', '/%80x'),
    ok('/a b', '/a%20b'),
    ok('/\u00e9?\u00e9', '/%E9', '?\u00e9')
  ]) {
    t.same(canonicalize(raw), want, JSON.stringify(raw))
  }
})

t.test('runs of slashes are merged', async t => {
  for (const [raw, want] of [
    ok('//', '/'),
    ok('//api', '/api'),
    ok('/api//orders', '/api/orders'),
    ok('/api///orders//', '/api/orders/'),
    ok('///%61pi//x', '/api/x'),
    ok('//%2e%2e%2e', '/...')
  ]) {
    t.same(canonicalize(raw), want, raw)
  }
})

t.test('an unchanged path is the input itself, not a rebuilt copy', async t => {
  const raw = '/api/orders/7'
  t.equal(canonicalize(raw)?.path, raw)
})

t.test('every accepted path is canonical: a fixed point, no //, no dot segment, printable ASCII', async t => {
  const alphabet = ['/', '/', '.', '.', ';', 'a', 'Z', '%', '2', 'e', 'E', 'f', '3', 'b', '5', 'c', '0', '\u00e9', ' ', '~', '?']
  let seed = 12345
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % alphabet.length
  let accepted = 0
  const problems: string[] = []
  for (let n = 0; n < 20000; n++) {
    let raw = '/'
    const len = 1 + (n % 12)
    for (let i = 0; i < len; i++) raw += alphabet[next()]
    const got = canonicalize(raw)
    if (got === null) continue
    accepted++
    const { path } = got
    const again = canonicalize(path + got.query)
    if (again === null || again.path !== path) problems.push(`not a fixed point: ${raw} → ${path}`)
    if (path.includes('//')) problems.push(`// in ${path}`)
    if (!/^[\x21-\x7e]*$/.test(path)) problems.push(`unprintable in ${path}`)
    for (const segment of path.split('/')) {
      const name = segment.split(';')[0]
      if (name === '.' || name === '..') problems.push(`dot segment in ${path} from ${raw}`)
    }
    if (/%(2[eEfF]|5[cC]|[46][1-9a-fA-F]|[57][0-9aA]|3[0-9])/.test(path.replace(/%25/g, ''))) problems.push(`undecoded or forbidden escape in ${path}`)
  }
  t.ok(accepted > 1000, `${accepted} accepted`)
  t.same(problems, [])
})
