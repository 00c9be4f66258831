import t from 'tap'
import { admit, type AdmitRequest } from '../../src/proxy/admit.ts'

/** A request as Node parses it: `raw` is rawHeaders, `headers` the lower-cased first values. */
function request (url: string, raw: string[], version = '1.1'): AdmitRequest {
  const headers: Record<string, string> = {}
  for (let i = 0; i < raw.length; i += 2) headers[raw[i].toLowerCase()] ??= raw[i + 1]
  const [major, minor] = version.split('.').map(Number)
  return { url, rawHeaders: raw, headers, httpVersionMajor: major, httpVersionMinor: minor } as unknown as AdmitRequest
}

t.test('an HTTP/1.1 request with one Host is admitted as it is', async t => {
  const req = request('/api/orders?x=1', ['Host', 'shop.example', 'Accept', '*/*'])
  t.equal(admit(req, 0), null)
  t.equal(req.url, '/api/orders?x=1')
  t.strictSame(req.rawHeaders, ['Host', 'shop.example', 'Accept', '*/*'])
})

t.test('Host: exactly one in HTTP/1.1, at most one in HTTP/1.0', async t => {
  t.equal(admit(request('/', []), 0), 'bad_request')
  t.equal(admit(request('/', ['Host', 'a', 'host', 'b']), 0), 'bad_request')
  t.equal(admit(request('/', [], '1.0'), 0), null)
  t.equal(admit(request('/', ['Host', 'a'], '1.0'), 0), null)
  t.equal(admit(request('/', ['Host', 'a', 'HOST', 'a'], '1.0'), 0), 'bad_request')
})

t.test('only HTTP/1 is taken', async t => {
  t.equal(admit(request('/', ['Host', 'a'], '2.0'), 0), 'bad_request')
  t.equal(admit(request('/', ['Host', 'a'], '0.9'), 0), 'bad_request')
})

t.test('chunked is the only transfer coding taken, in any case', async t => {
  t.equal(admit(request('/', ['Host', 'a', 'Transfer-Encoding', 'chunked']), 0), null)
  t.equal(admit(request('/', ['Host', 'a', 'Transfer-Encoding', 'Chunked']), 0), null)
  t.equal(admit(request('/', ['Host', 'a', 'Transfer-Encoding', 'gzip, chunked']), 0), 'bad_request')
  t.equal(admit(request('/', ['Host', 'a', 'Transfer-Encoding', 'identity']), 0), 'bad_request')
})

t.test('an announced body over maxBodyBytes is refused; 0 is no limit', async t => {
  t.equal(admit(request('/', ['Host', 'a', 'Content-Length', '1024']), 1024), null)
  t.equal(admit(request('/', ['Host', 'a', 'Content-Length', '1025']), 1024), 'body_too_large')
  t.equal(admit(request('/', ['Host', 'a', 'Content-Length', '1025']), 0), null)
  // Chunked announces no size: the limit is enforced as the body streams (dispatch).
  t.equal(admit(request('/', ['Host', 'a', 'Transfer-Encoding', 'chunked']), 1), null)
})

t.test('framing is judged before the body size', async t => {
  t.equal(admit(request('/', ['Content-Length', '5000']), 10), 'bad_request')
})

t.test('an absolute-form target is made origin-form: its authority becomes the Host', async t => {
  const req = request('http://Shop.Example:8080/api/orders?x=1', ['Host', 'other.example', 'Accept', '*/*'])
  t.equal(admit(req, 0), null)
  t.equal(req.url, '/api/orders?x=1')
  t.strictSame(req.rawHeaders, ['Host', 'Shop.Example:8080', 'Accept', '*/*'])
  t.equal(req.headers.host, 'Shop.Example:8080')

  const query = request('HTTPS://shop.example?q', ['Host', 'shop.example'])
  t.equal(admit(query, 0), null)
  t.equal(query.url, '/?q')

  const bare = request('http://shop.example', [], '1.0')
  t.equal(admit(bare, 0), null)
  t.equal(bare.url, '/')
  t.strictSame(bare.rawHeaders, ['Host', 'shop.example'])
  t.equal(bare.headers.host, 'shop.example')
})

t.test('other non-origin targets are left for routing to refuse', async t => {
  for (const url of ['ftp://shop.example/x', 'http://user@shop.example/x', '*', 'shop.example:443']) {
    const req = request(url, ['Host', 'shop.example'])
    t.equal(admit(req, 0), null, url)
    t.equal(req.url, url)
    t.strictSame(req.rawHeaders, ['Host', 'shop.example'])
  }
})
