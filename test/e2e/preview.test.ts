import { execFile } from 'node:child_process'
import t from 'tap'
import { signPreview, verifyPreview } from '../../src/routing/preview.ts'
import { admin, get, proxy, routes, upstream } from '../helpers.ts'

const SECRET = 'preview-secret'
const CLI = new URL('../../dist/cli.js', import.meta.url).pathname

function token (context: string, side: 'new' | 'legacy', expires = Math.floor(Date.now() / 1000) + 3600, secret = SECRET): string {
  return signPreview(secret, { context, side, expires })
}

t.test('a valid token picks the side whatever the weight; invalid ones are ignored and counted; the token never reaches an upstream', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 0 }), { env: { STRANGLER_PREVIEW_SECRET: SECRET } })
  const ask = async (headers: Record<string, string>): Promise<string> => JSON.parse((await get(`${p.base}/api/orders`, { headers })).body).name
  t.equal(await ask({ 'x-strangler-preview': token('orders', 'new') }), 'new')
  t.equal(await ask({ cookie: `theme=dark; strangler_preview=${token('orders', 'new')}; sid=1` }), 'new')
  const expired = token('orders', 'new', Math.floor(Date.now() / 1000) - 1)
  const good = token('orders', 'new')
  const tampered = `${Buffer.from(JSON.stringify({ c: 'orders', s: 'new', e: 9_999_999_999 })).toString('base64url')}.${good.split('.')[1]}`
  t.equal(await ask({ 'x-strangler-preview': expired }), 'legacy', 'expired')
  t.equal(await ask({ 'x-strangler-preview': tampered }), 'legacy', 'tampered')
  t.equal(await ask({ 'x-strangler-preview': token('carts', 'new') }), 'legacy', 'wrong context')
  t.equal(await ask({ 'x-strangler-preview': token('orders', 'new', undefined, 'other-secret') }), 'legacy', 'signed with another secret')
  t.equal(await ask({ 'x-strangler-preview': 'new' }), 'legacy', 'a plain value picks nothing')
  t.equal(await ask({ 'x-strangler-shadow': '1' }), 'legacy')
  for (const s of [...legacy.seen, ...next.seen]) {
    t.equal(s.headers['x-strangler-preview'], undefined)
    t.equal(s.headers['x-strangler-shadow'], undefined, 'a client cannot pose as a shadow request')
    t.notMatch(String(s.headers.cookie ?? ''), 'strangler_preview')
  }
  t.equal(next.seen[1].headers.cookie, 'theme=dark; sid=1', 'other cookies are kept')
  const m = (await admin(p, 'GET', '/metrics')).text
  for (const [result, n] of [['accepted', 2], ['expired', 1], ['bad_signature', 2], ['wrong_context', 1], ['malformed', 1]] as const) {
    t.match(m, new RegExp(`^strangler_preview_requests_total\\{context="orders",result="${result}"\\} ${n}$`, 'm'), result)
  }
})

t.test('without STRANGLER_PREVIEW_SECRET, tokens are off', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 0 }))
  const r = await get(`${p.base}/api/orders`, { headers: { 'x-strangler-preview': token('orders', 'new') } })
  t.equal(JSON.parse(r.body).name, 'legacy')
  t.equal(legacy.seen[0].headers['x-strangler-preview'], undefined)
})

t.test('strangler preview-token signs what the proxy verifies, and refuses without a secret', async t => {
  const run = (args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> => new Promise(resolve => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env } }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? 1, stdout, stderr }))
  })
  const ok = await run(['preview-token', 'orders', '--side', 'legacy', '--ttl', '30m'], { STRANGLER_PREVIEW_SECRET: SECRET })
  t.equal(ok.code, 0)
  const check = verifyPreview(SECRET, ok.stdout.trim(), Date.now() / 1000)
  t.ok(check.ok)
  if (check.ok) {
    t.same([check.claim.context, check.claim.side], ['orders', 'legacy'])
    t.ok(Math.abs(check.claim.expires - (Date.now() / 1000 + 1800)) < 60)
  }
  const off = await run(['preview-token', 'orders'], {})
  t.equal(off.code, 1)
  t.equal(off.stderr, 'strangler preview-token: preview tokens are off: set STRANGLER_PREVIEW_SECRET (the same value the proxy has)\n')
  t.equal((await run(['preview-token', 'orders', '--side', 'both'], { STRANGLER_PREVIEW_SECRET: SECRET })).code, 2)
})
