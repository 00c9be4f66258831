import t from 'tap'
import { availableParallelism } from 'node:os'
import { formatIssue, parseConfig } from '../../src/config/index.ts'

function errors (yaml: string): string[] {
  const result = parseConfig(yaml, 'routes.yaml', { env: {}, unsetVars: 'error' })
  if (result.errors.length > 0 && result.config !== null) throw new Error('config must be null when there are errors')
  return result.errors.map(formatIssue)
}

/** Six lines: two upstreams and the default. */
const BASE = `upstreams:
  monolith:
    url: http://monolith.internal:8080
  orders-svc:
    url: http://orders.internal:3000
default: monolith
`

/** BASE, then one context `orders` (lines 7–13) with `extra` lines appended to it. */
function withContext (match: string, extra = ''): string {
  return `${BASE}contexts:
  orders:
    match:
${match}
    legacy: monolith
    new: orders-svc
    weight: 25
${extra}`
}

t.test('YAML syntax errors, all of them, with positions', async t => {
  t.strictSame(errors('upstreams:\n  a: [1, 2\ndefault: "x\n'), [
    'routes.yaml:3:1 invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
    'routes.yaml:4:1 invalid YAML: Missing closing "quote'
  ])
})

t.test('duplicate keys', async t => {
  t.strictSame(errors(`${BASE}default: orders-svc\n`), ['routes.yaml:7:1 duplicate key "default" (already set at line 6)'])
})

t.test('custom tags are refused, never evaluated', async t => {
  t.strictSame(errors(`${BASE}contexts: !!js/function "function () {}"\n`), [
    'routes.yaml:7:11 tag !!js/function is not allowed here; write a plain YAML value'
  ])
})

t.test('keys that are not plain names', async t => {
  t.strictSame(errors(`${BASE}? [a, b]\n: 1\n`), ['routes.yaml:7:3 keys must be plain names, not lists, mappings or aliases'])
})

t.test('an empty file', async t => {
  t.strictSame(errors('# nothing yet\n'), ['routes.yaml:1:1 the file is empty; it needs at least "upstreams" and "default"'])
})

t.test('a document that is not a mapping', async t => {
  t.strictSame(errors('- upstreams\n- default\n'), ['routes.yaml:1:1 the file must be a mapping with keys such as "upstreams" and "default", not a list'])
  t.strictSame(errors('upstreams'), ['routes.yaml:1:1 the file must be a mapping with keys such as "upstreams" and "default", not a single value'])
})

t.test('more than one document', async t => {
  t.strictSame(errors(`${BASE}---\n${BASE}`), ['routes.yaml:7:1 the file must hold a single YAML document; remove the second one'])
})

t.test('YAML 1.1 is refused (yes/no booleans, merge keys)', async t => {
  t.strictSame(errors(`%YAML 1.1\n---\n${BASE}`), ['routes.yaml:1:1 %YAML 1.1 is not supported; the file is read as YAML 1.2'])
})

t.test('unknown keys point at the key and suggest the closest known one', async t => {
  t.strictSame(errors(withContext('      paths: [/api/orders]', '    wieght: 30\n    colour: blue\n')), [
    'routes.yaml:14:5 unknown key "wieght" (did you mean "weight"?)',
    'routes.yaml:15:5 unknown key "colour" (allowed: match, legacy, new, weight, sticky, segments, shadow, fallback, guard, ramp, rewrite)'
  ])
  t.strictSame(errors(`${BASE}contxts: {}\n`), ['routes.yaml:7:1 unknown key "contxts" (did you mean "contexts"?)'])
})

t.test('missing required keys', async t => {
  t.strictSame(errors('server: {}\n'), [
    'routes.yaml:1:1 the config is missing required key "upstreams"',
    'routes.yaml:1:1 the config is missing required key "default"'
  ])
  t.strictSame(errors(`${BASE}contexts:\n  orders:\n    match: { hosts: [a.example.com] }\n    weight: 1\n`), [
    'routes.yaml:8:3 context "orders" is missing required key "legacy"',
    'routes.yaml:8:3 context "orders" is missing required key "new"',
    'routes.yaml:9:5 match is missing required key "paths"'
  ])
  t.strictSame(errors('upstreams:\n  a:\n    timeout: 1s\ndefault: a\n'), ['routes.yaml:2:3 upstream "a" is missing required key "url"'])
})

t.test('a quoted weight is a string, not a number', async t => {
  t.strictSame(errors(withContext('      paths: [/api/orders]').replace('weight: 25', 'weight: "25"')), ['routes.yaml:13:13 weight must be a number'])
})

t.test('values of the wrong type', async t => {
  t.strictSame(errors(`server: [listen]\n${BASE}`), ['routes.yaml:1:1 server must be a mapping'])
  t.strictSame(errors(`server:\n  accessLog: "yes"\n  adminToken: 1234\n  trustProxy: 10.0.0.0/8\n${BASE}`), [
    'routes.yaml:2:14 accessLog must be true or false',
    'routes.yaml:3:15 adminToken must be a string',
    'routes.yaml:4:15 trustProxy must be a list'
  ])
  t.strictSame(errors(`${BASE}contexts:\n  orders: [/api]\n`), ['routes.yaml:8:3 context "orders" must be a mapping'])
  t.strictSame(errors(withContext('      paths: [/api/orders, 7]')), ['routes.yaml:10:28 paths[1] must be a string'])
})

t.test('weight outside 0–100', async t => {
  t.strictSame(errors(withContext('      paths: [/api/orders]').replace('weight: 25', 'weight: 100.5')), ['routes.yaml:13:13 weight must be between 0 and 100'])
  t.strictSame(errors(withContext('      paths: [/api/orders]').replace('weight: 25', 'weight: -1')), ['routes.yaml:13:13 weight must be between 0 and 100'])
  t.strictSame(errors(withContext('      paths: [/api/orders]').replace('weight: 25', 'weight: .nan')), ['routes.yaml:13:13 weight must be a number'])
})

t.test('weight with more than two decimals', async t => {
  t.strictSame(errors(withContext('      paths: [/api/orders]').replace('weight: 25', 'weight: 0.125')), [
    'routes.yaml:13:13 weight must have at most two decimals (steps of 0.01), not 0.125'
  ])
  t.strictSame(errors(withContext('      paths: [/api/orders]').replace('weight: 25', 'weight: 99.99')), [])
})

t.test('durations', async t => {
  t.strictSame(errors(`server:\n  drainTimeout: 30\n${BASE}`), ['routes.yaml:2:17 drainTimeout must be a duration with a unit, such as 250ms, 10s, 5m, 1h or 1h30m'])
  t.strictSame(errors(`${BASE}`.replace('url: http://orders.internal:3000', 'url: http://orders.internal:3000\n    timeout: 0s\n    bodyTimeout: 1000h')), [
    'routes.yaml:6:14 timeout must be a duration with a unit, such as 250ms, 10s, 5m, 1h or 1h30m',
    'routes.yaml:7:18 bodyTimeout must be more than 0 and at most 596h'
  ])
})

t.test('invalid and reserved names', async t => {
  t.strictSame(errors(`upstreams:\n  "bad name": { url: "http://a" }\n  ${'x'.repeat(64)}: { url: "http://b" }\ndefault: monolith\n`.replace('monolith', '"bad name"')), [
    'routes.yaml:2:3 upstream name "bad name" is not allowed: use up to 63 letters, digits, ".", "_" or "-", starting with a letter or digit',
    `routes.yaml:3:3 upstream name "${'x'.repeat(64)}" is not allowed: use up to 63 letters, digits, ".", "_" or "-", starting with a letter or digit`
  ])
  t.strictSame(errors(`${BASE}contexts:\n  default: { match: { paths: [/a] }, legacy: monolith, new: monolith, weight: 0 }\n  -x: { match: { paths: [/b] }, legacy: monolith, new: monolith, weight: 0 }\n`), [
    'routes.yaml:8:3 context name "default" is reserved: it is the metrics label of unmatched traffic',
    'routes.yaml:9:3 context name "-x" is not allowed: use up to 63 letters, digits, ".", "_" or "-", starting with a letter or digit'
  ])
})

t.test('no upstreams', async t => {
  t.strictSame(errors('upstreams: {}\ndefault: monolith\n'), [
    'routes.yaml:1:1 upstreams must declare at least one upstream'
  ])
})

t.test('sticky takes exactly one of header or cookie', async t => {
  const ctx = withContext('      paths: [/api/orders]', '    sticky:\n      header: x-user-id\n      cookie: sid\n')
  t.strictSame(errors(ctx), ['routes.yaml:14:5 sticky must set exactly one of header or cookie'])
  t.strictSame(errors(withContext('      paths: [/api/orders]', '    sticky: {}\n')), ['routes.yaml:14:5 sticky must set exactly one of header or cookie'])
  t.strictSame(errors(withContext('      paths: [/api/orders]', '    sticky: { header: "x user" }\n')), ['routes.yaml:14:23 sticky header "x user" is not a valid header name'])
  t.strictSame(errors(withContext('      paths: [/api/orders]', '    sticky: { cookie: "a;b" }\n')), ['routes.yaml:14:23 sticky cookie "a;b" is not a valid cookie name'])
})

t.test('empty lists', async t => {
  t.strictSame(errors(withContext('      paths: []\n      hosts: []')), [
    'routes.yaml:10:7 paths must list at least one entry',
    'routes.yaml:11:7 hosts must list at least one entry'
  ])
})

t.test('listen and admin addresses', async t => {
  t.strictSame(errors(`server:\n  listen: 8080\n  admin: "localhost"\n${BASE}`), [
    'routes.yaml:2:11 listen must be host:port, such as 0.0.0.0:8080 or [::]:8080',
    'routes.yaml:3:10 admin "localhost" is not a valid host:port (such as 0.0.0.0:8080, localhost:8080 or [::]:8080)'
  ])
  t.strictSame(errors(`server:\n  listen: "::1:8080"\n  admin: 127.0.0.1:65536\n${BASE}`), [
    'routes.yaml:2:11 listen "::1:8080" is not a valid host:port (such as 0.0.0.0:8080, localhost:8080 or [::]:8080)',
    'routes.yaml:3:10 admin "127.0.0.1:65536" is not a valid host:port (such as 0.0.0.0:8080, localhost:8080 or [::]:8080)'
  ])
})

t.test('listen and admin on the same address', async t => {
  t.strictSame(errors(`server:\n  listen: 127.0.0.1:9090\n${BASE}`), [
    "routes.yaml:2:11 listen and admin must not share an address (127.0.0.1:9090 and 127.0.0.1:9090): the admin API never shares the proxy's port"
  ])
  t.strictSame(errors(`server:\n  listen: 0.0.0.0:8080\n  admin: 127.0.0.1:8080\n${BASE}`), [
    "routes.yaml:3:10 listen and admin must not share an address (0.0.0.0:8080 and 127.0.0.1:8080): the admin API never shares the proxy's port"
  ])
  t.strictSame(errors(`server:\n  listen: 127.0.0.1:0\n  admin: 127.0.0.1:0\n${BASE}`), [], 'port 0 is a fresh port each time')
})

t.test('trustProxy entries', async t => {
  t.strictSame(errors(`server:\n  trustProxy: [10.0.0.0/8, 10.0.0.0/33, proxy.internal, "fd00::/129"]\n${BASE}`), [
    'routes.yaml:2:28 trustProxy entry "10.0.0.0/33" is not an IP address or CIDR (such as 10.0.0.0/8, 192.0.2.7 or fd00::/8)',
    'routes.yaml:2:41 trustProxy entry "proxy.internal" is not an IP address or CIDR (such as 10.0.0.0/8, 192.0.2.7 or fd00::/8)',
    'routes.yaml:2:57 trustProxy entry "fd00::/129" is not an IP address or CIDR (such as 10.0.0.0/8, 192.0.2.7 or fd00::/8)'
  ])
})

t.test('upstream urls', async t => {
  const urls = ['ftp://files.internal', 'http://user:pw@orders.internal', 'http://orders.internal/?v=1', 'http://orders.internal/#top', 'orders.internal:3000', 'http://orders internal', 'http:orders.internal', 'http://orders.internal:99999']
  const yaml = `upstreams:\n${urls.map((u, i) => `  u${i}: { url: "${u}" }\n`).join('')}default: u0\n`
  t.strictSame(errors(yaml), [
    'routes.yaml:2:14 url must use http or https, not ftp',
    'routes.yaml:3:14 url must not contain credentials (user:password@)',
    'routes.yaml:4:14 url must not have a query (?) or fragment (#)',
    'routes.yaml:5:14 url must not have a query (?) or fragment (#)',
    'routes.yaml:6:14 url must start with http:// or https://, such as http://orders.internal:3000',
    'routes.yaml:7:14 url must not contain whitespace or control characters',
    'routes.yaml:8:14 url must start with http:// or https://, such as http://orders.internal:3000',
    'routes.yaml:9:14 url is not a valid URL; write it as http://host:port or https://host/base-path'
  ])
})

t.test('references to undeclared upstreams point at the value and list the declared ones', async t => {
  t.strictSame(errors(withContext('      paths: [/api/orders]').replace('default: monolith', 'default: monolit').replace('new: orders-svc', 'new: orders')), [
    'routes.yaml:6:10 default "monolit" is not a declared upstream (declared: monolith, orders-svc)',
    'routes.yaml:12:10 new "orders" is not a declared upstream (declared: monolith, orders-svc)'
  ])
})

t.test('paths that a canonical request path can never match', async t => {
  const paths = ['api', '/api/', '/a//b', '/a/./b', '/a/../b', '/a/..;v=1/b', '/a?b', '/a#b', '/a\\\\b', '/a b', '/a\\tb', '/%61pi', '/a%2Fb', '/a%5cb', '/a%00', '/a%7F', '/a%zz', '/a%4', '/café', '/caf%c3%a9/%7e']
  t.strictSame(errors(withContext(`      paths:\n${paths.map(p => `        - "${p}"\n`).join('')}`.trimEnd())), [
    'routes.yaml:11:11 path "api" must start with "/"',
    'routes.yaml:12:11 path "/api/" must not end with "/" (prefixes match on segment boundaries: "/api" also matches "/api/…")',
    'routes.yaml:13:11 path "/a//b" must not contain an empty segment ("//")',
    'routes.yaml:14:11 path "/a/./b" must not contain "." segments',
    'routes.yaml:15:11 path "/a/../b" must not contain ".." segments',
    'routes.yaml:16:11 path "/a/..;v=1/b" must not contain ".." segments',
    'routes.yaml:17:11 path "/a?b" must not contain "?": paths are matched without the query string',
    'routes.yaml:18:11 path "/a#b" must not contain "#": a fragment never reaches the proxy',
    'routes.yaml:19:11 path "/a\\b" must not contain "\\": requests with a backslash are rejected',
    'routes.yaml:20:11 path "/a b" must not contain whitespace or control characters',
    'routes.yaml:21:11 path "/a\tb" must not contain whitespace or control characters',
    'routes.yaml:22:11 path "/%61pi" spells "a" as %61: requests are matched with it decoded, so it would never match; write "/api"',
    'routes.yaml:23:11 path "/a%2Fb" contains %2F (an encoded "/"): requests that carry it are rejected, so it would never match',
    'routes.yaml:24:11 path "/a%5cb" contains %5c (an encoded "\\"): requests that carry it are rejected, so it would never match',
    'routes.yaml:25:11 path "/a%00" contains %00 (an encoded control character): requests that carry it are rejected, so it would never match',
    'routes.yaml:26:11 path "/a%7F" contains %7F (an encoded control character): requests that carry it are rejected, so it would never match',
    'routes.yaml:27:11 path "/a%zz" has a malformed percent-escape "%zz"',
    'routes.yaml:28:11 path "/a%4" has a malformed percent-escape "%4"',
    'routes.yaml:29:11 path "/café" must not contain "é"; write it percent-encoded (%C3%A9), as requests are matched',
    'routes.yaml:30:11 path "/caf%c3%a9/%7e" would never match: requests are matched with upper-case escapes; write "/caf%C3%A9/~"'
  ])
  t.strictSame(errors(withContext('      paths: [/, /api/%E2%9C%93, "/a:b@c!$&\'()*+,;=~", "/a{b}|<c>"]')), [], 'other escapes and printable characters are fine')
})

t.test('a path listed twice in one context', async t => {
  t.strictSame(errors(withContext('      paths: [/api/orders, /api/carts, /api/orders]')), ['routes.yaml:10:40 path "/api/orders" is listed twice'])
})

t.test('hosts', async t => {
  t.strictSame(errors(withContext('      paths: [/api]\n      hosts: [Shop.Example.com, "shop.example.com:443", "*.example.com", "a.*.com", "*", "-a.com", shop.example.com]')), [
    'routes.yaml:11:33 host "shop.example.com:443" must not include a port; hosts match the Host header without it',
    'routes.yaml:11:74 host "a.*.com" is not valid: a wildcard is only allowed as a leading "*." (such as *.example.com)',
    'routes.yaml:11:85 host "*" is not valid: a wildcard is only allowed as a leading "*." (such as *.example.com)',
    'routes.yaml:11:90 host "-a.com" is not a valid host name (letters, digits and "-" in dot-separated labels)',
    'routes.yaml:11:100 host "shop.example.com" is listed twice'
  ])
})

t.test('methods', async t => {
  t.strictSame(errors(withContext('      paths: [/api]\n      methods: [get, POST, GET, "GE T"]')), [
    'routes.yaml:11:28 method "GET" is listed twice',
    'routes.yaml:11:33 method "GE T" is not a valid HTTP method name'
  ])
})

t.test('rewrite prefixes', async t => {
  const rewrite = '    rewrite:\n      new: { stripPrefix: /api/orders, addPrefix: "/v1/" }\n      legacy: { stripPrefix: /, addPrefix: / }\n'
  t.strictSame(errors(withContext('      paths: [/api/orders, /api/ordersx]', rewrite)), [
    'routes.yaml:15:27 stripPrefix "/api/orders" would never apply to path "/api/ordersx": it is not a prefix of it on a segment boundary',
    'routes.yaml:15:51 addPrefix "/v1/" must not end with "/" (prefixes match on segment boundaries: "/v1" also matches "/v1/…")',
    'routes.yaml:16:30 stripPrefix "/" strips nothing; leave it out',
    'routes.yaml:16:44 addPrefix "/" adds nothing; leave it out'
  ])
  t.strictSame(errors(withContext('      paths: [/api/orders]', '    rewrite:\n      new: { stripPref: /api }\n      canary: {}\n')), [
    'routes.yaml:15:14 unknown key "stripPref" (did you mean "stripPrefix"?)',
    'routes.yaml:16:7 unknown key "canary" (allowed: legacy, new)'
  ])
})

t.test('overlapping contexts', async t => {
  const ctx = (name: string, match: string): string => `  ${name}:\n    match: { ${match} }\n    legacy: monolith\n    new: orders-svc\n    weight: 0\n`
  const yaml = (...contexts: string[]): string => `${BASE}contexts:\n${contexts.join('')}`

  t.strictSame(errors(yaml(ctx('orders', 'paths: [/api/orders, /api/carts]'), ctx('carts', 'paths: [/api/carts]'))), [
    'routes.yaml:13:3 context "carts" overlaps context "orders": both match any host, prefix /api/carts, any method; give one of them other paths, hosts or methods'
  ])
  t.strictSame(errors(yaml(
    ctx('shop', 'paths: [/api], hosts: [shop.example.com, "*.example.com"]'),
    ctx('admin', 'paths: [/api], hosts: ["*.example.com"]')
  )), [
    'routes.yaml:13:3 context "admin" overlaps context "shop": both match host *.example.com, prefix /api, any method; give one of them other paths, hosts or methods'
  ])
  t.strictSame(errors(yaml(
    ctx('reads', 'paths: [/api], methods: [GET, HEAD]'),
    ctx('writes', 'paths: [/api], methods: [POST, head]')
  )), [
    'routes.yaml:13:3 context "writes" overlaps context "reads": both match any host, prefix /api, method HEAD; give one of them other paths, hosts or methods'
  ])
  t.strictSame(errors(yaml(
    ctx('any', 'paths: [/api]'),
    ctx('reads', 'paths: [/api], methods: [GET]'),
    ctx('shop', 'paths: [/api], hosts: [shop.example.com]'),
    ctx('wild', 'paths: [/api], hosts: ["*.example.com"]'),
    ctx('deeper', 'paths: [/api/orders]'),
    ctx('other', 'paths: [/api], hosts: [other.example.com], methods: [GET]')
  )), [], 'different specificity or a different prefix is not an overlap')
})

t.test('every error is listed, in file order', async t => {
  const yaml = `server:
  listen: nowhere
upstreams:
  monolith:
    url: ftp://monolith
default: monolith
contexts:
  orders:
    match: { paths: [api] }
    legacy: nobody
    new: monolith
    weight: 250
`
  t.strictSame(errors(yaml), [
    'routes.yaml:2:11 listen "nowhere" is not a valid host:port (such as 0.0.0.0:8080, localhost:8080 or [::]:8080)',
    'routes.yaml:5:10 url must use http or https, not ftp',
    'routes.yaml:9:22 path "api" must start with "/"',
    'routes.yaml:10:13 legacy "nobody" is not a declared upstream (declared: monolith)',
    'routes.yaml:12:13 weight must be between 0 and 100'
  ])
})

t.test('server.workers: a number from 1 to 64, or auto', async t => {
  const base = 'upstreams:\n  a: { url: http://a.internal }\ndefault: a\n'
  for (const [value, col] of [['0', 20], ['1.5', 20], ['"3"', 20], ['[2]', 11], ['65', 20]] as const) {
    const r = parseConfig(`server: { workers: ${value} }\n${base}`, 'w.yaml', { env: {}, unsetVars: 'error' })
    t.same(r.errors.map(formatIssue), [`w.yaml:1:${col} workers must be a number from 1 to 64, or auto (one per core); got ${JSON.stringify(JSON.parse(value))}`], value)
  }
  t.equal(parseConfig(`server: { workers: 2 }\n${base}`, 'w.yaml', { env: {}, unsetVars: 'error' }).config?.server.workers, 2)
  t.equal(parseConfig(`server: { workers: auto }\n${base}`, 'w.yaml', { env: {}, unsetVars: 'error' }).config?.server.workers, availableParallelism())
  t.equal(parseConfig(base, 'w.yaml', { env: {}, unsetVars: 'error' }).config?.server.workers, 1)
})

t.test('server.boardAuth: true or false, default false', async t => {
  const base = 'upstreams:\n  a: { url: http://a.internal }\ndefault: a\n'
  t.strictSame(errors(`server:\n  boardAuth: "yes"\n${base}`), ['routes.yaml:2:14 boardAuth must be true or false'])
  t.strictSame(errors(`server:\n  boardAuth: 1\n${base}`), ['routes.yaml:2:14 boardAuth must be true or false'])
  t.strictSame(errors(`server:\n  boardauth: true\n${base}`), ['routes.yaml:2:3 unknown key "boardauth" (did you mean "boardAuth"?)'])
  t.equal(parseConfig(`server: { boardAuth: true }\n${base}`, 'b.yaml', { env: {}, unsetVars: 'error' }).config?.server.boardAuth, true)
  t.equal(parseConfig(base, 'b.yaml', { env: {}, unsetVars: 'error' }).config?.server.boardAuth, false)
})

t.test('shadow: percent with two decimals, valid methods, headers and field paths', async t => {
  const base = 'upstreams:\n  a: { url: http://a.internal }\n  b: { url: http://b.internal }\ndefault: a\ncontexts:\n  c:\n    match: { paths: [/c] }\n    legacy: a\n    new: b\n    weight: 0\n    shadow:\n'
  const check = (shadow: string): string[] => parseConfig(base + shadow, 's.yaml', { env: {}, unsetVars: 'error' }).errors.map(formatIssue)
  t.same(check('      percent: 0.125\n'), ['s.yaml:12:16 percent must have at most two decimals (steps of 0.01), not 0.125'])
  t.same(check('      percent: 5\n      methods: ["GE T"]\n'), ['s.yaml:13:17 method "GE T" is not a valid HTTP method name'])
  t.same(check('      percent: 5\n      compare: { ignore: [a..b], headers: ["x y"] }\n'), [
    's.yaml:13:27 "a..b" is not a dotted field path (such as items.*.updatedAt)',
    's.yaml:13:44 "x y" is not a valid header name'
  ])
  t.same(check('      percnt: 5\n'), ['s.yaml:11:5 shadow is missing required key "percent"', 's.yaml:12:7 unknown key "percnt" (did you mean "percent"?)'])
  const ok = parseConfig(base + '      percent: 12.5\n      compare: { headers: [ETag], ignore: [items.*.updatedAt] }\n', 's.yaml', { env: {}, unsetVars: 'error' })
  t.same(ok.config?.contexts[0].shadow, { percent: 12.5, methods: ['GET', 'HEAD', 'OPTIONS'], maxBodyBytes: 65536, headers: ['etag'], ignore: ['items.*.updatedAt'], redactHeaders: [], redactFields: [], learnNoise: 5 })
})

t.test('fallback: true, or a mapping of on5xx, methods and maxBodyBytes', async t => {
  const base = 'upstreams:\n  a: { url: http://a.internal }\n  b: { url: http://b.internal }\ndefault: a\ncontexts:\n  c:\n    match: { paths: [/c] }\n    legacy: a\n    new: b\n    weight: 0\n'
  const parse = (fallback: string) => parseConfig(`${base}    fallback: ${fallback}\n`, 'f.yaml', { env: {}, unsetVars: 'error' })
  t.same(parse('true').config?.contexts[0].fallback, { on5xx: false, methods: ['GET', 'HEAD', 'OPTIONS'], maxBodyBytes: 0 })
  t.equal(parse('false').config?.contexts[0].fallback, null)
  t.same(parse('{ on5xx: true, methods: [get, PUT], maxBodyBytes: 1024 }').config?.contexts[0].fallback, { on5xx: true, methods: ['GET', 'PUT'], maxBodyBytes: 1024 })
  t.same(parse('yes please').errors.map(formatIssue), ['f.yaml:11:15 fallback must be true, false, or a mapping with on5xx, methods and maxBodyBytes'])
  t.same(parse('{ on5xx: maybe, retries: 3, maxBodyBytes: -1 }').errors.map(formatIssue), [
    'f.yaml:11:24 on5xx must be true or false',
    'f.yaml:11:31 unknown key "retries" (allowed: on5xx, methods, maxBodyBytes)',
    'f.yaml:11:57 maxBodyBytes must be a whole number of bytes from 0 to 1048576'
  ])
})

t.test('server.state.redis: a Redis URL, never echoing its password', async t => {
  t.strictSame(errors(`server:\n  state:\n    redis: { url: "http://user:secret@redis:6379" }\n${BASE}`), [
    'routes.yaml:3:19 url "http://***@redis:6379" is not a Redis URL (redis://host:6379, rediss://user:password@host:6380/0 or unix:///path/to/redis.sock)'
  ])
  t.strictSame(errors(`server:\n  state:\n    redis: { url: "redis://" }\n${BASE}`), [
    'routes.yaml:3:19 url "redis://" is not a Redis URL (redis://host:6379, rediss://user:password@host:6380/0 or unix:///path/to/redis.sock)'
  ])
  t.strictSame(errors(`server:\n  state:\n    redis: { keyPrefix: "a:" }\n${BASE}`).length, 1, 'url is required')
  t.strictSame(errors(`server:\n  state: {}\n${BASE}`).length, 1, 'redis is required')
  t.strictSame(errors(`server:\n  state:\n    redis: { url: "unix:///run/redis.sock", keyPrefix: "shop:" }\n${BASE}`), [])
})

t.test('upstream maxConnections and queueTimeout', async t => {
  const upstream = (extra: string): string => BASE.replace('url: http://orders.internal:3000', `url: http://orders.internal:3000\n${extra}`)
  t.strictSame(errors(upstream('    maxConnections: 0\n    queueTimeout: 5')), [
    'routes.yaml:6:21 maxConnections must be between 1 and 65536',
    'routes.yaml:7:19 queueTimeout must be a duration with a unit, such as 250ms, 10s, 5m, 1h or 1h30m'
  ])
  t.strictSame(errors(upstream('    maxConnections: 2.5\n    queueTimeout: 1000h')), [
    'routes.yaml:6:21 maxConnections must be an integer',
    'routes.yaml:7:19 queueTimeout must be more than 0 and at most 596h'
  ])
  t.strictSame(errors(upstream('    maxConnections: 4\n    queueTimeout: 250ms')), [])
})
