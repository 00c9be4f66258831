import { rawRequest } from '../faults.ts'
import t from 'tap'
import { proxy, routes, upstream } from '../helpers.ts'

/*
 * Request smuggling and header trust, over raw sockets. Every malformed
 * request is followed on the same connection by a well-formed probe that asks
 * to close the connection: a proxy that refuses the attack closes first and
 * the probe is never served; a proxy that misreads the framing serves it (or
 * a smuggled request) and the upstream's record shows it.
 */

const PROBE = 'GET /probe HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n'

interface RawResponse { status: number; headers: Record<string, string>; rawHeaders: string[]; body: string }

/** Writes `bytes` on a fresh connection and resolves with everything read until the proxy closes it. */
function exchange (port: number, bytes: string | Buffer): Promise<Buffer> {
  return rawRequest(port, bytes).then(r => r.bytes)
}

/** Parses the responses in `buf`: framed by Content-Length, chunked, or (HTTP/1.0) by the close. */
function responses (buf: Buffer): RawResponse[] {
  const out: RawResponse[] = []
  let text = buf.toString('latin1')
  while (text.length > 0) {
    const end = text.indexOf('\r\n\r\n')
    if (end === -1) throw new Error(`incomplete response head: ${JSON.stringify(text)}`)
    const [statusLine, ...lines] = text.slice(0, end).split('\r\n')
    const headers: Record<string, string> = {}
    const rawHeaders: string[] = []
    for (const line of lines) {
      const colon = line.indexOf(':')
      const name = line.slice(0, colon)
      const value = line.slice(colon + 1).trim()
      rawHeaders.push(name, value)
      headers[name.toLowerCase()] = headers[name.toLowerCase()] === undefined ? value : `${headers[name.toLowerCase()]}, ${value}`
    }
    let rest = text.slice(end + 4)
    let body: string
    if (headers['transfer-encoding'] === 'chunked') {
      body = ''
      for (;;) {
        const lineEnd = rest.indexOf('\r\n')
        const size = parseInt(rest.slice(0, lineEnd), 16)
        rest = rest.slice(lineEnd + 2)
        if (size === 0) {
          rest = rest.slice(rest.indexOf('\r\n\r\n') === 0 ? 2 : rest.indexOf('\r\n\r\n') + 4)
          break
        }
        body += rest.slice(0, size)
        rest = rest.slice(size + 2)
      }
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length'])
      body = rest.slice(0, length)
      rest = rest.slice(length)
    } else {
      body = rest
      rest = ''
    }
    out.push({ status: Number(statusLine.split(' ')[1]), headers, rawHeaders, body })
    text = rest
  }
  return out
}

t.test('malformed framing: 400 and the connection closed; the upstream sees nothing, not even the probe', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0 }))
  const H = 'Host: shop.example.com\r\n'
  const cases: Array<[string, string]> = [
    ['Content-Length and Transfer-Encoding', `POST /a HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
    ['Transfer-Encoding then Content-Length', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n`],
    ['CL.TE: a request hidden after the terminating chunk', `POST /a HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n`],
    ['duplicate Content-Length, same value', `POST /a HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`],
    ['duplicate Content-Length, different values', `POST /a HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde`],
    ['Content-Length as a list', `POST /a HTTP/1.1\r\n${H}Content-Length: 3, 3\r\n\r\nabc`],
    ['negative Content-Length', `POST /a HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`],
    ['signed Content-Length', `POST /a HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\nabc`],
    ['Transfer-Encoding: chunked, identity', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n`],
    ['Transfer-Encoding: xchunked', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`],
    ['Transfer-Encoding: identity with Content-Length', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc`],
    ['Transfer-Encoding: chunked twice', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`],
    ['space before the colon of Transfer-Encoding', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`],
    ['obs-fold continuation', `GET /a HTTP/1.1\r\n${H}X-A: one\r\n two\r\n\r\n`],
    ['obs-fold of Transfer-Encoding', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`],
    ['bare LF line endings', 'GET /a HTTP/1.1\nHost: shop.example.com\n\n'],
    ['bare LF after one header', 'GET /a HTTP/1.1\r\nHost: shop.example.com\nX-A: b\r\n\r\n'],
    ['bare CR in a header value', `GET /a HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`],
    ['100 KB chunk extension', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3;${'x'.repeat(100_000)}\r\nabc\r\n0\r\n\r\n`],
    ['chunk size overflowing 64 bits', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF3\r\nabc\r\n0\r\n\r\n`],
    ['chunk size 2^64 + 3', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n10000000000000003\r\nabc\r\n0\r\n\r\n`],
    ['chunk data longer than its size', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n`],
    ['space before a colon', `GET /a HTTP/1.1\r\n${H}X-A : b\r\n\r\n`],
    ['NUL in a header value', `GET /a HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`],
    // Node answers this 400 itself; the probe pipelined behind it must not be carried out either.
    ['HTTP/1.1 without Host', 'GET /a HTTP/1.1\r\nX-A: b\r\n\r\n'],
    // RFC 9112 §3.2: MUST be 400. The proxy routes on one Host; preserveHost and X-Forwarded-Host would carry another.
    ['two Host headers', `GET /a HTTP/1.1\r\n${H}Host: admin.example.com\r\n\r\n`],
    // No version, no Host, no framing: nothing to forward as HTTP/1.1.
    ['HTTP/0.9-style request line', 'GET /a\r\n\r\n']
  ]
  for (const [name, attack] of cases) {
    const before = legacy.seen.length
    const got = responses(await exchange(p.proxyPort, attack + PROBE))
    t.strictSame(got.map(r => r.status), [400], `${name}: one 400, then the connection is closed`)
    t.strictSame(legacy.seen.slice(before).map(s => `${s.method} ${s.url}`), [], `${name}: the upstream saw no request`)
  }
})

t.test('a request inside a correctly framed body stays body: the upstream sees one request with those bytes', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0 }))
  const inner = 'GET /smuggled HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 0\r\n\r\n'
  const byLength = `POST /a HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: ${inner.length}\r\n\r\n${inner}`
  const byChunks = `POST /b HTTP/1.1\r\nHost: shop.example.com\r\nTransfer-Encoding: chunked\r\n\r\n${inner.length.toString(16)}\r\n${inner}\r\n0\r\n\r\n`
  const got = responses(await exchange(p.proxyPort, byLength + byChunks + PROBE))
  t.strictSame(got.map(r => [r.status, JSON.parse(r.body).url]), [[200, '/a'], [200, '/b'], [200, '/probe']], 'three responses, in order')
  // The pool may send the three on separate connections: compare without order.
  t.strictSame(legacy.seen.map(s => `${s.method} ${s.url} ${JSON.stringify(s.body)}`).sort(), [
    'GET /probe ""',
    `POST /a ${JSON.stringify(inner)}`,
    `POST /b ${JSON.stringify(inner)}`
  ])
})

t.test('a pipelined request answered, then garbage: the client gets that answer, then 400', async t => {
  // The first request is forwarded and carried out; its answer must reach the
  // client before the 400 for the garbage, or the client is told 400 for a
  // request the upstream carried out, and a client that retries does it twice.
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0 }))
  const got = responses(await exchange(p.proxyPort, 'POST /first HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 2\r\n\r\nhiGARBAGE\r\n\r\n'))
  t.strictSame(legacy.seen.map(s => `${s.method} ${s.url} ${s.body}`), ['POST /first hi'], 'the upstream executed the first request once')
  t.strictSame(got.map(r => r.status), [200, 400], 'the client gets 200 for the first request, then 400')
})

t.test('nothing pipelined after a request that closes the connection is processed', async t => {
  // RFC 9112 §9.6: after "Connection: close" the server MUST NOT process
  // further requests on that connection. The client never gets an answer
  // for them, so the upstream must never carry them out.
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0 }))
  const got = responses(await exchange(p.proxyPort, 'GET /first HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\nPOST /second HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 2\r\n\r\nhi'))
  t.strictSame(got.map(r => [r.status, r.body]), [[200, JSON.stringify({ name: 'legacy', method: 'GET', url: '/first' })]], 'one response, then the connection is closed')
  t.strictSame(legacy.seen.map(s => `${s.method} ${s.url}`), ['GET /first'], 'the upstream never saw the request pipelined after the close')
})

t.test("a client's Connection header cannot strip the headers the proxy adds", async t => {
  let raw: string[] = []
  const legacy = await upstream(t, 'legacy', (req, res) => { raw = req.rawHeaders; res.end('ok') })
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0 }))
  await exchange(p.proxyPort, 'GET /x HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close, x-forwarded-for, host, x-forwarded-host, x-forwarded-proto, x-secret\r\nX-Secret: 1\r\nX-Kept: 1\r\n\r\n')
  t.strictSame(pairs(raw, ['host', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-secret', 'x-kept']), [
    ['host', `127.0.0.1:${legacy.port}`],
    ['x-forwarded-for', '127.0.0.1'],
    ['x-forwarded-host', 'shop.example.com'],
    ['x-forwarded-proto', 'http'],
    ['x-kept', '1']
  ], 'Host and X-Forwarded-* set by the proxy, each once; the header the client named is gone')

  // With preserveHost the upstream gets the Host the request was routed on, named in Connection or not.
  let preserved: string[] = []
  const keeper = await upstream(t, 'keeper', (req, res) => { preserved = req.rawHeaders; res.end('ok') })
  const pk = await proxy(t, routes({ legacy: keeper.url, new: keeper.url, weight: 0 }).replace(`url: ${keeper.url}`, `url: ${keeper.url}\n    preserveHost: true`))
  await exchange(pk.proxyPort, 'GET /x HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close, host\r\n\r\n')
  t.strictSame(pairs(preserved, ['host', 'x-forwarded-host']), [['host', 'shop.example.com'], ['x-forwarded-host', 'shop.example.com']], 'preserveHost: Host survives Connection: host')

  // Naming Content-Length in Connection cannot cut or split the body.
  const before = legacy.seen.length
  const got = responses(await exchange(p.proxyPort, 'POST /body HTTP/1.1\r\nHost: shop.example.com\r\nConnection: content-length\r\nContent-Length: 11\r\n\r\nhello world' + PROBE))
  t.strictSame(got.map(r => r.status), [200, 200])
  t.strictSame(legacy.seen.slice(before).map(s => `${s.method} ${s.url} ${s.body}`).sort(), ['GET /probe ', 'POST /body hello world'])
})

/** The [name, value] pairs of `raw` whose lower-cased name is in `names`, sorted by name; lines of one name keep their order. */
function pairs (raw: string[], names: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (let i = 0; i < raw.length; i += 2) if (names.includes(raw[i].toLowerCase())) out.push([raw[i].toLowerCase(), raw[i + 1]])
  return out.sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)
}

t.test('hop-by-hop request headers never reach the upstream', async t => {
  let raw: string[] = []
  const legacy = await upstream(t, 'legacy', (req, res) => {
    if (req.url === '/x') raw = req.rawHeaders
    res.end('ok')
  })
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0 }))
  await exchange(p.proxyPort, [
    'GET /x HTTP/1.1',
    'Host: shop.example.com',
    'Connection: keep-alive, x-listed',
    'Keep-Alive: timeout=600',
    'TE: trailers',
    'Trailer: x-checksum',
    'Upgrade: h2c',
    'Proxy-Connection: keep-alive',
    'Proxy-Authorization: Basic dXNlcjpwYXNz',
    'Expect: 100-continue',
    'X-Listed: secret',
    'X-Kept: 1',
    '', ''
  ].join('\r\n') + PROBE)
  const names = ['keep-alive', 'te', 'trailer', 'upgrade', 'proxy-connection', 'proxy-authorization', 'expect', 'x-listed', 'transfer-encoding', 'x-kept']
  t.strictSame(pairs(raw, names), [['x-kept', '1']], 'only the end-to-end header crossed')
  t.strictSame(pairs(raw, ['connection']), [['connection', 'keep-alive']], "the only Connection upstream is the proxy's own, for its pooled connection")

  // A chunked request body is re-framed: the client's Transfer-Encoding never crosses as such.
  let chunkedRaw: string[] = []
  const framed = await upstream(t, 'framed', (req, res) => { chunkedRaw = req.rawHeaders; res.end('ok') })
  const p2 = await proxy(t, routes({ legacy: framed.url, new: framed.url, weight: 0 }))
  await exchange(p2.proxyPort, 'POST /c HTTP/1.1\r\nHost: shop.example.com\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n')
  t.strictSame(framed.seen.map(r => r.body), ['abcde'], 'the body arrives whole, once')
  t.notOk(pairs(chunkedRaw, ['x-trailer', 'trailer']).length > 0, 'client trailers do not become headers')
  t.ok(pairs(chunkedRaw, ['transfer-encoding']).every(([, v]) => v === 'chunked'), 'any Transfer-Encoding upstream is the proxy\'s own chunked framing')
})

t.test('hop-by-hop response headers, and those the upstream lists in its Connection, never reach the client', async t => {
  const legacy = await upstream(t, 'legacy', (_req, res) => {
    res.writeHead(200, [
      ['Connection', 'keep-alive, x-internal'],
      ['Keep-Alive', 'timeout=600'],
      ['Proxy-Connection', 'keep-alive'],
      ['Upgrade', 'h2c'],
      ['Trailer', 'x-checksum'],
      ['TE', 'trailers'],
      ['X-Internal', 'secret'],
      ['X-Kept', '1']
    ].flat())
    res.write('o')
    res.addTrailers({ 'x-checksum': '42' })
    res.end('k')
  })
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0 }))
  const [r] = responses(await exchange(p.proxyPort, 'GET /x HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n'))
  t.equal(r.status, 200)
  t.equal(r.body, 'ok')
  t.strictSame(pairs(r.rawHeaders, ['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'trailer', 'te', 'x-internal', 'x-kept', 'x-checksum']), [
    ['connection', 'close'],
    ['x-kept', '1']
  ], "the client sees only the end-to-end header and the proxy's own Connection")

  // Transfer-Encoding and trailers do not cross either: an HTTP/1.0 client gets a plain body.
  const chunky = await upstream(t, 'chunky', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' })
    res.write('abc')
    res.addTrailers({ 'x-checksum': '42' })
    res.end('de')
  })
  const p2 = await proxy(t, routes({ legacy: chunky.url, new: chunky.url, weight: 0 }))
  const [r2] = responses(await exchange(p2.proxyPort, 'GET /x HTTP/1.0\r\nHost: shop.example.com\r\n\r\n'))
  t.equal(r2.status, 200)
  t.strictSame(pairs(r2.rawHeaders, ['transfer-encoding', 'trailer', 'x-checksum']), [], 'no Transfer-Encoding, Trailer or trailer for an HTTP/1.0 client')
  t.equal(r2.body, 'abcde', 'the body is the bytes, not chunk framing')
})

const SPOOFED = [
  'X-Forwarded-For: 1.2.3.4',
  'X-Forwarded-For: 5.6.7.8',
  'X-Forwarded-Host: evil.example',
  'X-Forwarded-Proto: https',
  'X-Forwarded-Port: 443',
  'X-Forwarded-Prefix: /admin',
  'x-FORWARDED-for: 9.9.9.9',
  'Forwarded: for=1.2.3.4;host=evil.example;proto=https',
  'X-Real-IP: 1.2.3.4'
]
const FORWARDING = ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'forwarded', 'x-real-ip', 'host']

t.test('spoofed forwarding headers from an untrusted peer are replaced or dropped', async t => {
  let raw: string[] = []
  const legacy = await upstream(t, 'legacy', (req, res) => { raw = req.rawHeaders; res.end('ok') })
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0 }))
  await exchange(p.proxyPort, `GET /x HTTP/1.1\r\nHost: shop.example.com\r\n${SPOOFED.join('\r\n')}\r\nConnection: close\r\n\r\n`)
  t.strictSame(pairs(raw, FORWARDING), [
    ['host', `127.0.0.1:${legacy.port}`],
    ['x-forwarded-for', '127.0.0.1'],
    ['x-forwarded-host', 'shop.example.com'],
    ['x-forwarded-proto', 'http']
  ])
})

t.test('forwarding headers from a trusted peer are kept, and the peer appended', async t => {
  let raw: string[] = []
  const legacy = await upstream(t, 'legacy', (req, res) => { raw = req.rawHeaders; res.end('ok') })
  const p = await proxy(t, routes({ legacy: legacy.url, new: legacy.url, weight: 0, server: '  trustProxy: [127.0.0.1]' }))
  await exchange(p.proxyPort, `GET /x HTTP/1.1\r\nHost: shop.example.com\r\n${SPOOFED.join('\r\n')}\r\nConnection: close\r\n\r\n`)
  t.strictSame(pairs(raw, FORWARDING), [
    ['forwarded', 'for=1.2.3.4;host=evil.example;proto=https'],
    ['host', `127.0.0.1:${legacy.port}`],
    ['x-forwarded-for', '1.2.3.4, 5.6.7.8, 9.9.9.9, 127.0.0.1'],
    ['x-forwarded-host', 'evil.example'],
    ['x-forwarded-port', '443'],
    ['x-forwarded-prefix', '/admin'],
    ['x-forwarded-proto', 'https'],
    ['x-real-ip', '1.2.3.4']
  ])
})
