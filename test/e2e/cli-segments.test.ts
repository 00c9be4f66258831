import { execFile } from 'node:child_process'
import t from 'tap'

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname
const FIX = 'test/fixtures/cli'

function run (args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? 1, stdout, stderr })
    })
  })
}

t.test('check: segment mistakes as FILE:LINE:COL, exit 1', async t => {
  const r = await run(['check', `${FIX}/segments-old.yaml`, `${FIX}/segments-invalid.yaml`])
  t.equal(r.code, 1)
  t.equal(r.stdout, [
    `${FIX}/segments-old.yaml: valid (2 upstreams, 2 contexts, hash 1fbf6da52d8a)`,
    `${FIX}/segments-invalid.yaml:12:9 a segment must set exactly one of header, cookie or query`,
    `${FIX}/segments-invalid.yaml:13:25 values must list at least one entry`,
    `${FIX}/segments-invalid.yaml:14:46 side must be legacy or new`,
    `${FIX}/segments-invalid.yaml:16:36 header x-plan = "gold" is already pinned by segments[3]: only the first segment that matches decides, so this one never would`,
    `${FIX}/segments-invalid.yaml: invalid, 4 errors`, ''].join('\n'))
})

t.test('explain names the segment that decides, or says none did', async t => {
  const pinned = await run(['explain', `${FIX}/segments-new.yaml`, 'GET', '/api/orders/7', '-H', 'X-Tenant: globex', '-H', 'x-user-id: alice'])
  t.equal(pinned.stdout, [
    'request   GET /api/orders/7',
    'context   orders (paths /api/orders; hosts any; methods any)',
    'segment   segments[0] matches (header x-tenant = acme, globex → new): it goes to new whatever the weight, unless the context is rolled back',
    'new          100%  orders-svc receives /api/orders/7',
    'legacy         0%  monolith receives /api/orders/7', ''].join('\n'))
  const query = await run(['explain', `${FIX}/segments-new.yaml`, 'GET', '/api/orders?region=%65u'])
  t.equal(query.stdout, [
    'request   GET /api/orders?region=%65u',
    'context   orders (paths /api/orders; hosts any; methods any)',
    'segment   segments[1] matches (query region = eu → legacy): it goes to legacy whatever the weight, unless the context is rolled back',
    'new            0%  orders-svc receives /api/orders?region=%65u',
    'legacy       100%  monolith receives /api/orders?region=%65u', ''].join('\n'))
  const none = await run(['explain', `${FIX}/segments-new.yaml`, 'GET', '/api/orders', '-H', 'x-tenant: ACME', '-H', 'x-user-id: alice'])
  t.equal(none.stdout, [
    'request   GET /api/orders',
    'context   orders (paths /api/orders; hosts any; methods any)',
    'segments  none of 2 matches: the weight decides',
    'sticky    header x-user-id = alice: bucket 5260 of 10000; buckets below 1000 go to new',
    'new            0%  orders-svc receives /api/orders',
    'legacy       100%  monolith receives /api/orders', ''].join('\n'))
})

t.test('diff shows the segments added, removed or changed, and the side each pins', async t => {
  const r = await run(['diff', `${FIX}/segments-old.yaml`, `${FIX}/segments-new.yaml`])
  t.equal(r.code, 0)
  t.equal(r.stdout, [
    'CONTEXT  WEIGHT  IMPACT',
    'orders   (same)  segment added: query region = eu → legacy; segment removed: beta: cookie beta = 1 → new; segment changed: header x-tenant = acme, globex → new (was header x-tenant = acme → new)',
    'carts    (same)  segment added: first-tenant: header x-tenant = acme → new', ''].join('\n'))
  const json = JSON.parse((await run(['diff', '--json', `${FIX}/segments-new.yaml`, `${FIX}/segments-old.yaml`])).stdout)
  t.strictSame(json.contexts[1], {
    context: 'carts',
    kind: 'changed',
    fields: [],
    segments: { added: [], removed: [{ header: 'x-tenant', values: ['acme'], side: 'new', name: 'first-tenant' }], changed: [] }
  })
})
