import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import net from 'node:net'
import t, { type Test } from 'tap'
import { formatIssue, parseConfig } from '../../src/config/index.ts'
import type { Shadows } from '../../src/shadow/shadows.ts'
import { rawRequest } from '../faults.ts'
import { flaskApp } from '../flask.ts'
import { get, proxy, routes, upstream } from '../helpers.ts'
import { ok, scriptedUpstream } from '../raw-upstream.ts'

/*
 * WSGI, CGI and PHP name a request header HTTP_<NAME> with "-" turned into "_",
 * so `X_Forwarded_For` lands in the same slot as the X-Forwarded-For the proxy
 * sets, ahead of it. Request headers with "_" in their names are dropped by
 * default, as nginx does (`underscores_in_headers off`).
 */

const SPOOF = 'X_Forwarded_For: 6.6.6.6\r\nX_Forwarded_Proto: gopher\r\nX_Forwarded_Host: evil.example\r\nX_Real_IP: 6.6.6.6\r\n'

/** The HTTP_* environ the WSGI app saw for a GET carrying the spoofing headers. */
async function environOf (t: Test, port: number): Promise<Record<string, string>> {
  const r = await rawRequest(port, `GET /api/orders/1 HTTP/1.1\r\nHost: shop.example.com\r\n${SPOOF}Connection: close\r\n\r\n`)
  const text = r.bytes.toString('latin1')
  t.match(text, /^HTTP\/1\.1 200 /)
  const env = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, string>
  return { FOR: env.HTTP_X_FORWARDED_FOR, PROTO: env.HTTP_X_FORWARDED_PROTO, HOST: env.HTTP_X_FORWARDED_HOST, REAL_IP: env.HTTP_X_REAL_IP }
}

function yaml (url: string, setting: string): string {
  return routes({ legacy: url, new: url, weight: 0, server: setting === '' ? '' : `  underscoreHeaders: ${setting}` })
}

t.test('a WSGI app never sees a spoofed forwarding header spelled with underscores', async t => {
  const app = await flaskApp(t, 'echo_environ.py')
  const p = await proxy(t, yaml(app, ''))
  t.same(await environOf(t, p.proxyPort), { FOR: '127.0.0.1', PROTO: 'http', HOST: 'shop.example.com', REAL_IP: undefined })
})

t.test('with underscoreHeaders: keep the WSGI app gets them, folded ahead of the real value', async t => {
  const app = await flaskApp(t, 'echo_environ.py')
  const p = await proxy(t, yaml(app, 'keep'))
  t.same(await environOf(t, p.proxyPort), { FOR: '6.6.6.6,127.0.0.1', PROTO: 'gopher,http', HOST: 'evil.example,shop.example.com', REAL_IP: '6.6.6.6' })
})

t.test('the upstream receives exactly the headers without underscores; keep passes them as spelled; a reload switches', async t => {
  const u = await scriptedUpstream(t, () => ok())
  const p = await proxy(t, yaml(u.url, ''))
  const request = `GET /x HTTP/1.1\r\nHost: shop.example.com\r\nMy_Header: a\r\n${SPOOF}X-Ok: b\r\nConnection: close\r\n\r\n`
  await rawRequest(p.proxyPort, request)
  const names = (): string[] => u.requests[u.requests.length - 1].headers.map(([n, v]) => n === 'x-request-id' && /^[0-9a-f-]{36}$/.test(v) ? 'x-request-id: (a UUID)' : `${n}: ${v}`)
  // undici writes host and connection first
  t.same(names(), [
    `host: 127.0.0.1:${u.port}`, 'connection: keep-alive', 'X-Ok: b', 'x-forwarded-for: 127.0.0.1', 'x-forwarded-host: shop.example.com', 'x-forwarded-proto: http', 'x-request-id: (a UUID)'
  ])

  writeFileSync(p.file, yaml(u.url, 'keep'))
  t.equal((await p.reload('admin')).ok, true)
  await rawRequest(p.proxyPort, request)
  t.same(names(), [
    `host: 127.0.0.1:${u.port}`, 'connection: keep-alive',
    'My_Header: a', 'X_Forwarded_For: 6.6.6.6', 'X_Forwarded_Proto: gopher', 'X_Forwarded_Host: evil.example', 'X_Real_IP: 6.6.6.6', 'X-Ok: b',
    'x-forwarded-for: 127.0.0.1', 'x-forwarded-host: shop.example.com', 'x-forwarded-proto: http', 'x-request-id: (a UUID)'
  ])

  writeFileSync(p.file, yaml(u.url, 'drop'))
  t.equal((await p.reload('admin')).ok, true)
  await rawRequest(p.proxyPort, request)
  t.equal(names().filter(n => n.includes('_')).length, 0, 'drop, spelled out, drops them again')
})

t.test('a WebSocket upgrade drops them too', async t => {
  const u = await scriptedUpstream(t, () => 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n')
  const p = await proxy(t, yaml(u.url, ''))
  const socket = net.connect(p.proxyPort, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(`GET /ws HTTP/1.1\r\nHost: shop.example.com\r\n${SPOOF}Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n`)
  await once(socket, 'data')
  socket.destroy()
  t.same(u.requests[0].headers.filter(([n]) => n.includes('_')), [])
  t.same(u.requests[0].headers.find(([n]) => n === 'x-forwarded-for'), ['x-forwarded-for', '127.0.0.1'])
})

t.test('a shadow copy drops them too', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 0, extra: '    shadow:\n      percent: 100\n      learnNoise: 0' }))
  const shadows = p.local?.shadows as Shadows
  const done = once(shadows, 'result')
  await get(`${p.base}/api/orders/1`, { headers: { X_Forwarded_For: '6.6.6.6', 'x-ok': 'b' } })
  await done
  t.equal(next.seen.length, 1)
  t.equal(next.seen[0].headers['x-ok'], 'b')
  t.equal(next.seen[0].headers.x_forwarded_for, undefined)
  t.equal(next.seen[0].headers['x-forwarded-for'], '127.0.0.1')
})

t.test('underscoreHeaders is drop or keep', async t => {
  const base = 'upstreams: { m: { url: "http://127.0.0.1:1" } }\ndefault: m\n'
  const r = parseConfig(`server: { underscoreHeaders: allow }\n${base}`, 'u.yaml', { env: {}, unsetVars: 'error' })
  t.same(r.errors.map(formatIssue), ['u.yaml:1:30 underscoreHeaders must be drop or keep'])
  t.equal(parseConfig(base, 'u.yaml', { env: {}, unsetVars: 'error' }).config?.server.underscoreHeaders, 'drop')
  t.equal(parseConfig(`server: { underscoreHeaders: keep }\n${base}`, 'u.yaml', { env: {}, unsetVars: 'error' }).config?.server.underscoreHeaders, 'keep')
})
