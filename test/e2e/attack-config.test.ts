import fc from 'fast-check'
import { writeFileSync } from 'node:fs'
import t from 'tap'
import { get, proxy, upstream } from '../helpers.ts'
import { HOSTILE, invalidAsFile, ODD, OPTS, truncations, valid } from '../config-corpus.ts'

// A proxy asked to reload any invalid config of the corpus keeps routing exactly as before.

t.test('while serving, reloading any of these changes nothing: same upstream, same path, same config, still answering', async t => {
  const legacy = await upstream(t, 'legacy')
  const orders = await upstream(t, 'orders-svc')
  const good = valid(legacy.url, orders.url)
  const p = await proxy(t, good, { env: OPTS.env })
  const hash = p.config.hash
  const probe = async (): Promise<string[]> => Promise.all([
    get(`${p.base}/api/orders/7`, { headers: { host: 'shop.example.com' } }),
    get(`${p.base}/api/carts`, { headers: { host: 'shop.example.com' } }),
    get(`${p.base}/other`)
  ].map(async r => { const res = await r; return `${res.status} ${res.body}` }))
  const before = await probe()
  t.strictSame(before, [
    `200 ${JSON.stringify({ name: 'orders-svc', method: 'GET', url: '/v2/orders/7' })}`,
    `200 ${JSON.stringify({ name: 'legacy', method: 'GET', url: '/api/carts' })}`,
    `200 ${JSON.stringify({ name: 'legacy', method: 'GET', url: '/other' })}`
  ], 'the routing under test')

  // Every hostile input that is invalid as a file: refused by parseConfig, or over the 1 MiB limit.
  const inputs: Array<[string, string | Buffer]> = Object.entries({ ...HOSTILE, ...ODD })
    .filter(([, text]) => invalidAsFile(text))
  inputs.push(['invalid UTF-8', Buffer.concat([Buffer.from(good), Buffer.from([0xc0, 0xae])])])
  const cuts = truncations(good).map((text, at) => [`truncated at ${at}`, text] as [string, string]).filter(([, text]) => invalidAsFile(text))
  for (let i = 0; i < cuts.length; i += 8) inputs.push(cuts[i])
  fc.sample(fc.tuple(fc.nat({ max: good.length }), fc.string({ unit: 'binary', minLength: 1, maxLength: 30 })), { numRuns: 200 })
    .map(([at, junk]) => good.slice(0, at) + junk + good.slice(at))
    .filter(text => invalidAsFile(text))
    .slice(0, 50)
    .forEach((text, i) => inputs.push([`spliced #${i}`, text]))

  for (const [name, content] of inputs) {
    writeFileSync(p.file, content)
    const result = await p.reload('admin')
    t.equal(result.ok, false, `${name}: the reload is refused`)
    t.equal(p.config.hash, hash, `${name}: the config in force is unchanged`)
    t.strictSame(await probe(), before, `${name}: every request lands where it did, with the same path`)
  }
  t.ok(inputs.length > 150, `${inputs.length} hostile reloads`)
  writeFileSync(p.file, good)
  t.strictSame(await p.reload('admin'), { ok: true, changed: false, hash }, 'and the good file is accepted again as the same config')
})
