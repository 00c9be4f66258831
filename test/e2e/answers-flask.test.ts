import t, { type Test } from 'tap'
import { rawRequest } from '../faults.ts'
import { flaskApp } from '../flask.ts'
import { proxy, routes, upstream } from '../helpers.ts'

/*
 * A real framework behind a stripPrefix: Flask builds its redirects from the
 * request (url_for(..., _external=True) takes the scheme and host it was sent)
 * and sets cookies with a Path. The client must get them back under the path it
 * used, and never see the upstream's address. test/fixtures/wsgi/prefixed_app.py
 * is the app.
 */

/** The Location and Set-Cookie fields the client receives, as on the wire, and the body. */
async function answer (t: Test, port: number, path: string, host = 'shop.example.com'): Promise<{ status: number; location: string[]; cookies: string[]; body: string }> {
  const r = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
  const text = r.bytes.toString('latin1')
  const end = text.indexOf('\r\n\r\n')
  t.not(end, -1, 'a complete head')
  const [status, ...lines] = text.slice(0, end).split('\r\n')
  const values = (name: string): string[] => lines.filter(l => l.toLowerCase().startsWith(`${name}:`)).map(l => l.slice(name.length + 1).trim())
  return { status: Number(status.split(' ')[1]), location: values('location'), cookies: values('set-cookie'), body: text.slice(end + 4) }
}

async function behind (t: Test, app: string): Promise<{ port: number; app: string }> {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({
    legacy: legacy.url,
    new: app,
    weight: 100,
    extra: '    rewrite:\n      new: { stripPrefix: /api }'
  }).replace('paths: [/api/orders]', 'paths: [/api/orders, /api/login]'))
  return { port: p.proxyPort, app }
}

t.test('an absolute redirect built from the request comes back under the client\'s path, without the upstream\'s address', async t => {
  const { port, app } = await behind(t, await flaskApp(t, 'prefixed_app.py'))
  const r = await answer(t, port, '/api/orders/7/pay')
  t.equal(r.status, 302)
  t.same(r.location, ['/api/orders/7?paid=1#receipt'])
  t.notOk(r.location[0].includes(new URL(app).host), 'the upstream\'s address never reaches the client')
})

t.test('cookie paths are mapped as the request path was: the app\'s / is the client\'s /api', async t => {
  const { port } = await behind(t, await flaskApp(t, 'prefixed_app.py'))
  const r = await answer(t, port, '/api/login')
  t.equal(r.status, 200)
  t.same(r.cookies, ['session=abc; HttpOnly; Path=/api/orders', 'theme=dark; Path=/api', 'elsewhere=1; Path=/api/help'])
})

t.test('behind ProxyFix(x_prefix=1) the app builds its URLs from X-Forwarded-Prefix, and they are left as they are', async t => {
  const { port, app } = await behind(t, await flaskApp(t, 'prefixed_app.py', 'proxyfix'))
  const shown = await answer(t, port, '/api/orders/7')
  t.same(JSON.parse(shown.body), { self: `${app}/api/orders/7`, prefix: '/api' }, 'the app read X-Forwarded-Prefix: /api')
  const r = await answer(t, port, '/api/orders/7/pay')
  t.same(r.location, ['/api/orders/7?paid=1#receipt'])
  const login = await answer(t, port, '/api/login')
  t.same(login.cookies, ['session=abc; HttpOnly; Path=/api/orders', 'theme=dark; Path=/api', 'elsewhere=1; Path=/api/help'])
})

t.test('with preserveHost the app names the client\'s host: the path is mapped, the host kept (as the app wrote it: Werkzeug lower-cases it)', async t => {
  const app = await flaskApp(t, 'prefixed_app.py')
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, `server:
  listen: 127.0.0.1:0
  admin: 127.0.0.1:0
upstreams:
  monolith: { url: "${legacy.url}" }
  orders-svc: { url: "${app}", preserveHost: true }
default: monolith
contexts:
  orders:
    match: { paths: [/api/orders] }
    legacy: monolith
    new: orders-svc
    weight: 100
    rewrite: { new: { stripPrefix: /api } }
`)
  const r = await answer(t, p.proxyPort, '/api/orders/7/pay', 'Shop.Example.com:8443')
  t.same(r.location, ['http://shop.example.com:8443/api/orders/7?paid=1#receipt'])
})
