import { mkdirSync } from 'node:fs'
import type http from 'node:http'
import path from 'node:path'
import { chromium, type Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { admin, deadPort, get, proxy, routes, tempDir, upstream, whoAnswers } from '../helpers.ts'

const TOKEN = 'board-token'
const ARTIFACTS = path.resolve('.tap', 'artifacts')

/**
 * Debian's chromium, headless, with a fresh profile. No skip when it is
 * missing: the launch fails and so does the test (CI installs it).
 * Every request the page makes must stay on the admin origin, and nothing may
 * break the CSP or throw: `problems` collects what did.
 */
async function board (t: Test, adminPort: number): Promise<{ page: Page; problems: string[] }> {
  const origin = `http://127.0.0.1:${adminPort}`
  const context = await chromium.launchPersistentContext(tempDir(t), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1600, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']
  })
  t.teardown(() => context.close())
  const page = context.pages()[0] ?? await context.newPage()
  const problems: string[] = []
  page.on('request', r => { if (!r.url().startsWith(`${origin}/`)) problems.push(`request to ${r.url()}`) })
  page.on('pageerror', e => problems.push(`page error: ${e.message}`))
  // Chromium logs every refused fetch; the tests provoke 400, 401 and 403 on purpose.
  page.on('console', m => { if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 40[013] /.test(m.text())) problems.push(`console: ${m.text()}`) })
  await page.addInitScript({ content: "document.addEventListener('securitypolicyviolation', e => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))" })
  await page.goto(`${origin}/`)
  return { page, problems }
}

const cell = (page: Page, context: string, col: string) => page.locator(`tr[data-context="${context}"] td.${col}`)

/** Waits until the cell's text matches, then returns it. */
async function waitText (page: Page, context: string, col: string, text: RegExp): Promise<string> {
  const c = cell(page, context, col).filter({ hasText: text })
  await c.waitFor()
  return await c.innerText()
}

async function screenshot (t: Test, page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true })
  const file = path.join(ARTIFACTS, name)
  await page.screenshot({ path: file, fullPage: true })
  t.comment(`screenshot: ${file}`)
}

async function useToken (page: Page, token: string): Promise<void> {
  await page.fill('#token', token)
  await page.click('#token-use')
}

/** Answers 500 to every `every`th request, 200 otherwise. */
function flaky (name: string, every: number): http.RequestListener {
  let n = 0
  return (req, res) => {
    const status = ++n % every === 0 ? 500 : 200
    const body = JSON.stringify({ name, url: req.url })
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(body)
  }
}

async function send (url: string, n: number, headers: (i: number) => Record<string, string> = () => ({})): Promise<void> {
  for (let i = 0; i < n; i++) await get(url, { headers: headers(i) })
}

t.test('the board lists every context with its stage and weights, and the traffic sent shows in the live numbers', async t => {
  const legacy = await upstream(t, 'monolith')
  const next = await upstream(t, 'new')
  const accounts = await upstream(t, 'accounts-svc', flaky('accounts-svc', 20))
  const p = await proxy(t, `server:
  listen: 127.0.0.1:0
  admin: 127.0.0.1:0
  adminToken: ${TOKEN}
upstreams:
  monolith: { url: ${legacy.url} }
  catalog-svc: { url: ${next.url} }
  search-svc: { url: ${next.url} }
  orders-svc: { url: ${next.url} }
  accounts-svc: { url: ${accounts.url} }
  payments-svc: { url: ${next.url} }
  pages-svc: { url: ${next.url} }
default: monolith
contexts:
  catalog:
    match: { paths: [/api/catalog] }
    legacy: monolith
    new: catalog-svc
    weight: 0
  search:
    match: { paths: [/api/search] }
    legacy: monolith
    new: search-svc
    weight: 0
    shadow: { percent: 100, learnNoise: 0, compare: { ignore: [name] } }
  orders:
    match: { paths: [/api/orders] }
    legacy: monolith
    new: orders-svc
    weight: 25
    sticky: { header: x-user-id }
  payments:
    match: { paths: [/api/payments] }
    legacy: monolith
    new: payments-svc
    weight: 0
    guard: { maxErrorRateDelta: 2 }
    ramp: { steps: [5, 25, 50, 100], every: 1h }
  accounts:
    match: { paths: [/api/accounts] }
    legacy: monolith
    new: accounts-svc
    weight: 100
  pages:
    match: { paths: [/pages] }
    legacy: pages-svc
    new: pages-svc
    weight: 100
`)
  const { page, problems } = await board(t, p.adminPort)
  const expected = [
    ['accounts', 'migrated', '100%', ' (100%)'],
    ['catalog', 'legacy only', '0%', ' (0%)'],
    ['orders', 'ramping 25%', '25%', ' (25%)'],
    ['pages', 'legacy retired', '100%', ' (100%)'],
    ['payments', 'ramping 5%', '5%', ' (0%)'],
    ['search', 'shadowing', '0%', ' (0%)']
  ]
  await page.locator('#rows tr').nth(expected.length - 1).waitFor()
  const rows = await page.locator('#rows tr').evaluateAll(trs => trs.map(tr => [
    tr.getAttribute('data-context'),
    tr.querySelector('.stage')?.textContent,
    tr.querySelector('.effective')?.textContent,
    tr.querySelector('.configured')?.textContent
  ]))
  t.same(rows, expected, 'one row per context, sorted by name: stage, effective and configured weight')
  const time = (iso: string): Promise<string> => page.evaluate(at => new Date(at).toLocaleTimeString(), iso)
  const ramp = (await admin(p, 'GET', '/status')).json.contexts.find((c: { name: string }) => c.name === 'payments').ramp
  t.equal(await cell(page, 'payments', 'safety').innerText(), `guard holding\nramp step 1/4, next ${await time(ramp.nextAt)}`, 'guard and ramp state')
  t.same(await page.locator('#stages button').allTextContents(), ['legacy only 1', 'shadowing 1', 'ramping 2', 'migrated 1', 'legacy retired 1'], 'contexts per stage')
  t.same(await page.locator('#rows tr').evaluateAll(trs => trs.map(tr => tr.querySelector('button')?.hasAttribute('disabled'))), [false, true, false, true, false, true], 'Roll back only where something would move: not at 0%, not with legacy retired')
  t.equal(await page.locator('#share').innerText(), '38.3%', 'before any traffic: the mean weight to new')

  await admin(p, 'PUT', '/contexts/orders/weight', { token: TOKEN, body: { weight: 10, reason: 'INC-2041: p99 up on checkout', ttl: '90m' } })
  await send(`${p.base}/api/accounts/1`, 40)
  await send(`${p.base}/api/catalog/1`, 30)
  await send(`${p.base}/api/orders/1`, 40, i => ({ 'x-user-id': `user-${i}` }))
  await send(`${p.base}/api/search?q=x`, 10)
  await send(`${p.base}/unrouted`, 5)

  t.match(await waitText(page, 'accounts', 'new-rps', /^[1-9]|^0\.[0-9]*[1-9]/), /^\d+(\.\d+)?$/, 'new answers of accounts per second')
  t.equal(await waitText(page, 'accounts', 'new-err', /^5%$/), '5%', 'one in 20 answers of accounts-svc is a 500')
  t.match(await cell(page, 'accounts', 'new-p99').innerText(), /^\d+(\.\d)? ms$/)
  t.equal(await cell(page, 'accounts', 'new-fallback').innerText(), '0%', 'no fallback: every request sent to new was answered by new')
  t.equal(await cell(page, 'accounts', 'legacy-rps').innerText(), '0')
  t.equal(await cell(page, 'accounts', 'legacy-err').innerText(), '—', 'no legacy traffic, no rate')
  t.equal(await waitText(page, 'catalog', 'legacy-err', /%/), '0%')
  t.equal(await cell(page, 'catalog', 'new-rps').innerText(), '0')
  t.equal(await cell(page, 'catalog', 'new-fallback').innerText(), '—', 'nothing sent to new, no rate')
  t.equal(await waitText(page, 'search', 'shadow', /of 10/), '100% of 10\n100% mirrored', 'shadow match rate')
  t.equal(await waitText(page, 'orders', 'stage', /10%/), 'ramping 10%')
  const expiry = (await admin(p, 'GET', '/status')).json.contexts.find((c: { name: string }) => c.name === 'orders').override.expiresAt
  t.equal(await cell(page, 'orders', 'override').innerText(), `weight 10% by admin\nINC-2041: p99 up on checkout\nexpires in 90 min (${await time(expiry)})`, 'the override with its reason and expiry')
  t.match(await page.locator('#share-text').innerText(), /^of all traffic served by new services: [\d.]+ of [\d.]+ req\/s over the last \d+ s \([\d.]+ req\/s matched no context\)$/)
  t.match(await page.locator('#config').innerText(), new RegExp(`^config ${p.config.hash} · loaded .+ · last reload ok · reloads 0 ok, 0 rejected$`))
  await screenshot(t, page, 'board-overview.png')
  t.same(problems, [], 'nothing loaded from elsewhere, no CSP violation, no error')
})

t.test('a dead new service behind fallback shows as fallbacks of new, not as its 5xx, and its requests as legacy\'s', async t => {
  const legacy = await upstream(t, 'legacy')
  const p = await proxy(t, routes({ legacy: legacy.url, new: `http://127.0.0.1:${await deadPort()}`, weight: 100, extra: '    fallback: true' }))
  const { page, problems } = await board(t, p.adminPort)
  await waitText(page, 'orders', 'stage', /^migrated$/)
  await send(`${p.base}/api/orders/1`, 20)
  t.equal(await waitText(page, 'orders', 'new-fallback', /%/), '100%')
  t.match(await cell(page, 'orders', 'new-fallback').getAttribute('class'), /\bwarn\b/)
  t.equal(await cell(page, 'orders', 'new-rps').innerText(), '0')
  t.equal(await cell(page, 'orders', 'new-err').innerText(), '—', 'new answered nothing: no 5xx rate')
  t.match(await cell(page, 'orders', 'legacy-rps').innerText(), /^[1-9]|^0\.[0-9]*[1-9]/, 'legacy served them')
  t.equal(await cell(page, 'orders', 'legacy-err').innerText(), '0%')
  t.same(problems, [])
})

t.test('noisy shadow comparisons show beside a match rate that never counts them', async t => {
  const plain = (prefix: string): http.RequestListener => {
    let n = 0
    return (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(`${prefix} ${++n}`)
    }
  }
  const legacy = await upstream(t, 'monolith', plain('legacy at'))
  const next = await upstream(t, 'new', plain('new'))
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 0, extra: '    shadow: { percent: 100, learnNoise: 100 }' }))
  const shadows = p.local?.shadows as NonNullable<typeof p.local>['shadows']
  let compared = 0
  const done = new Promise<void>(resolve => shadows.on('result', () => { if (++compared === 5) resolve() }))
  await send(`${p.base}/api/orders/1`, 5)
  await done
  const { page, problems } = await board(t, p.adminPort)
  t.equal(await waitText(page, 'orders', 'shadow', /of 5/), '0% of 5\n100% noisy: legacy varies\n100% mirrored')
  t.match(await page.locator('#footnote').innerText(), /Shadow match: answers verified equal, over the last 1,000 comparisons; noisy ones count against it\.$/)
  t.same(problems, [], 'nothing loaded from elsewhere, no CSP violation, no error')
})

t.test('a rollback clicked on the board takes effect on the next proxied request and the row changes stage; weight and clear too', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 100, server: `  adminToken: ${TOKEN}` }))
  const { page, problems } = await board(t, p.adminPort)
  await waitText(page, 'orders', 'stage', /^migrated$/)
  await send(`${p.base}/api/orders/1`, 20)
  await waitText(page, 'orders', 'new-rps', /^[1-9]|^0\.[0-9]*[1-9]/)

  await page.click('tr[data-context="orders"] button[data-action="rollback"]')
  t.equal(await page.locator('#message').innerText(), 'Enter the admin token above first: actions need it.', 'no token yet: the page asks for it')
  t.equal(await page.locator('#confirm').isVisible(), false)
  await useToken(page, TOKEN)
  t.equal(await page.locator('#token-state').innerText(), 'token set for this browser session')
  t.equal(await page.evaluate("sessionStorage.getItem('strangler-admin-token')"), TOKEN, 'kept in sessionStorage')
  t.equal(await page.evaluate('localStorage.length + document.cookie.length'), 0, 'and nowhere else')

  // Two clicks: Roll back, then confirm.
  await page.click('tr[data-context="orders"] button[data-action="rollback"]')
  await page.locator('#confirm').waitFor()
  t.equal(await page.locator('#confirm-title').innerText(), 'Roll back orders?')
  t.match(await page.locator('#confirm-text').innerText(), /^100% of the traffic of orders \(≈[\d.]+ req\/s\) moves from new to legacy: weight to new 100% → 0%\.$/)
  await page.click('#confirm-ok')
  t.equal(await waitText(page, 'orders', 'stage', /^legacy only$/), 'legacy only', 'the row changes stage')
  t.equal(await whoAnswers(`${p.base}/api/orders/1`), 'legacy', 'the next proxied request goes to legacy')
  t.equal(await cell(page, 'orders', 'override').innerText(), 'rolled back by admin\nrolled back from the board\nno expiry')
  t.equal(await page.locator('#message').innerText(), 'orders: weight to new 100% → 0%')
  t.equal(await page.locator('#confirm').isVisible(), false)
  t.equal(await page.locator('tr[data-context="orders"] button[data-action="rollback"]').isDisabled(), true, 'nothing left to roll back')

  await page.click('tr[data-context="orders"] button[data-action="weight"]')
  await page.fill('#confirm-weight', '')
  t.equal(await page.locator('#confirm-text').innerText(), 'Enter a weight from 0 to 100.')
  await page.click('#confirm-ok')
  t.equal(await page.locator('#confirm-error').innerText(), 'Enter a weight from 0 to 100.', 'an empty weight is not 0')
  await page.fill('#confirm-weight', '12.345')
  await page.click('#confirm-ok')
  await page.locator('#confirm-error').filter({ hasText: /two decimals/ }).waitFor()
  t.equal(await page.locator('#confirm-error').innerText(), '400 STRANGLER_BAD_WEIGHT: "weight" has at most two decimals, got 12.345', 'the API\'s refusal is shown')
  t.equal(p.overrides.get('orders')?.weight, 0, 'neither changed anything')
  await page.fill('#confirm-weight', '40')
  t.match(await page.locator('#confirm-text').innerText(), /^40% of the traffic of orders \(≈[\d.]+ req\/s\) moves from legacy to new: weight to new 0% → 40%\.$/, 'the text follows the weight typed')
  await page.fill('#confirm-reason', '<img src=x onerror="document.body.dataset.pwned=1">')
  await page.click('#confirm-ok')
  t.equal(await waitText(page, 'orders', 'stage', /^ramping 40%$/), 'ramping 40%')
  t.equal(await cell(page, 'orders', 'override').innerText(), 'weight 40% by admin\n<img src=x onerror="document.body.dataset.pwned=1">\nno expiry', 'the reason is shown as text')
  t.equal(await page.locator('#rows img').count(), 0, 'never as markup')
  t.equal(await page.evaluate('document.body.dataset.pwned'), undefined)
  t.equal(p.overrides.get('orders')?.weight, 40)

  await page.click('tr[data-context="orders"] button[data-action="clear"]')
  t.equal(await page.locator('#confirm-title').innerText(), 'Clear the override of orders?')
  t.match(await page.locator('#confirm-text').innerText(), /^60% of the traffic of orders \(.+\) moves from legacy to new: weight to new 40% → 100%\.$/)
  await page.click('#confirm-ok')
  t.equal(await waitText(page, 'orders', 'stage', /^migrated$/), 'migrated')
  t.equal(await cell(page, 'orders', 'override').innerText(), '—')
  t.equal(await whoAnswers(`${p.base}/api/orders/1`), 'new')

  await page.click('tr[data-context="orders"] button[data-action="rollback"]')
  await page.click('#confirm-cancel')
  t.equal(await page.locator('#confirm').isVisible(), false)
  t.equal(p.overrides.get('orders'), null, 'cancel changes nothing')
  t.same(problems, [])
})

t.test('a wrong token is refused with a visible message, for actions and, with boardAuth, for reading', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const yaml = (boardAuth: boolean): string => routes({ legacy: legacy.url, new: next.url, weight: 100, server: `  adminToken: ${TOKEN}\n  boardAuth: ${boardAuth}` })
  const open = await proxy(t, yaml(false))
  const { page, problems } = await board(t, open.adminPort)
  await waitText(page, 'orders', 'stage', /^migrated$/)
  await useToken(page, 'not-the-token')
  await page.click('tr[data-context="orders"] button[data-action="rollback"]')
  await page.click('#confirm-ok')
  await page.locator('#confirm-error').waitFor()
  t.equal(await page.locator('#confirm-error').innerText(), 'The admin token was refused: Send the admin token as "Authorization: Bearer <token>".')
  t.equal(await page.locator('#message').innerText(), 'The admin token was refused: Send the admin token as "Authorization: Bearer <token>".')
  t.equal(await whoAnswers(`${open.base}/api/orders/1`), 'new', 'nothing changed')
  t.same(problems, [])

  const locked = await proxy(t, yaml(true))
  const second = await board(t, locked.adminPort)
  const lock = second.page.locator('#lock')
  await lock.filter({ hasText: /needs/ }).waitFor()
  t.equal(await lock.innerText(), 'This board needs the admin token (server.boardAuth is on): enter it above.')
  t.equal(await second.page.locator('#board').isVisible(), false, 'nothing of the topology is shown')
  t.equal(await second.page.locator('#rows tr').count(), 0)
  await useToken(second.page, 'not-the-token')
  await lock.filter({ hasText: /refused/ }).waitFor()
  t.equal(await lock.innerText(), 'The admin token was refused: Send the admin token as "Authorization: Bearer <token>".')
  await useToken(second.page, TOKEN)
  t.equal(await waitText(second.page, 'orders', 'stage', /^migrated$/), 'migrated', 'the right token shows the board')
  t.equal(await lock.isVisible(), false)
  await second.page.click('#token-forget')
  await lock.filter({ hasText: /needs/ }).waitFor()
  t.equal(await second.page.locator('#board').isVisible(), false, 'forgetting the token hides it again')
  t.same(second.problems, [])
})

t.test('200 contexts: search filters, a stage filters, headers sort', async t => {
  const legacy = await upstream(t, 'legacy')
  const names = Array.from({ length: 200 }, (_, i) => `ctx-${String(i).padStart(3, '0')}`)
  const weight = (i: number): number => (i * 7) % 101
  const p = await proxy(t, `server:
  listen: 127.0.0.1:0
  admin: 127.0.0.1:0
upstreams:
  monolith: { url: ${legacy.url} }
  svc: { url: ${legacy.url} }
default: monolith
contexts:
${names.map((n, i) => `  ${n}:\n    match: { paths: [/${n}] }\n    legacy: monolith\n    new: svc\n    weight: ${weight(i)}\n`).join('')}`)
  const { page, problems } = await board(t, p.adminPort)
  const rows = page.locator('#rows tr')
  await rows.nth(199).waitFor()
  t.equal(await rows.count(), 200)
  t.equal(await page.locator('#shown').innerText(), '200 contexts')
  const shownNames = (): Promise<string[]> => rows.evaluateAll(trs => trs.map(tr => tr.getAttribute('data-context') as string))

  await page.fill('#search', 'ctx-01')
  t.same(await shownNames(), names.slice(10, 20), 'search filters by name')
  t.equal(await page.locator('#shown').innerText(), '10 of 200 contexts')
  await page.fill('#search', '')
  t.equal(await rows.count(), 200)

  const migrated = names.filter((_, i) => weight(i) === 100)
  t.same(migrated, ['ctx-072', 'ctx-173'])
  await page.click('#stages button[data-stage="migrated"]')
  t.same(await shownNames(), migrated, 'a stage button filters by stage')
  await page.click('#stages button[data-stage="migrated"]')
  t.equal(await rows.count(), 200, 'and a second click shows all again')

  const byWeight = names.map((n, i) => ({ n, w: weight(i) })).sort((a, b) => a.w - b.w || (a.n < b.n ? -1 : 1))
  await page.click('th[data-sort="weight"]')
  t.same(await shownNames(), byWeight.map(x => x.n), 'weight ascending, then by name')
  t.equal(await page.locator('th[data-sort="weight"]').getAttribute('aria-sort'), 'ascending')
  await page.click('th[data-sort="weight"]')
  const heaviest = (x: { n: string; w: number }, y: { n: string; w: number }): number => y.w - x.w || (x.n < y.n ? -1 : 1)
  t.same(await shownNames(), [...byWeight].sort(heaviest).map(x => x.n), 'a second click: weight descending, then by name')
  t.equal(await page.locator('th[data-sort="weight"]').getAttribute('aria-sort'), 'descending')
  await page.fill('#search', 'ramping 9')
  t.same(await shownNames(), byWeight.filter(x => x.w === 9 || (x.w >= 90 && x.w < 100)).sort(heaviest).map(x => x.n), 'search matches the stage label too, and the sort holds')
  await screenshot(t, page, 'board-200.png')
  t.same(problems, [])
})

t.test('a context\'s segments show under its name, and as off while a rollback sends them to legacy too', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const segments = '    segments:\n      - { header: x-tenant, values: [acme, globex], side: new, name: tenants }\n      - { query: region, values: [eu], side: legacy }'
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 0, server: `  adminToken: ${TOKEN}`, extra: segments }))
  const { page, problems } = await board(t, p.adminPort)
  const pins = 'tenants: header x-tenant = acme, globex → new\n1: query region = eu → legacy'
  t.equal(await waitText(page, 'orders', 'context', /before the weight/), `orders\nmonolith → orders-svc\nsegments, before the weight:\n${pins}`)
  t.equal((await admin(p, 'POST', '/contexts/orders/rollback', { token: TOKEN, body: { reason: 'INC-7: rollback' } })).status, 200)
  t.equal(await waitText(page, 'orders', 'context', /segments off/), `orders\nmonolith → orders-svc\nsegments off: rolled back\n${pins}`)
  t.equal(await cell(page, 'orders', 'context').locator('.warn').innerText(), 'segments off: rolled back')
  t.same(problems, [])
})
