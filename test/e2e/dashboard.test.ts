import { readFileSync } from 'node:fs'
import t from 'tap'
import { CHART, FULLNAME, NAMESPACE } from '../chart.ts'
import { deadPort, get, proxy, routes, tally, upstream } from '../helpers.ts'
import { prometheus, type Vector } from '../prometheus.ts'

const JOB = `${FULLNAME}-admin`

interface Panel { type: string; title: string; targets?: Array<{ expr: string }> }

t.test('every query of the Grafana dashboard returns data from a real Prometheus scraping a real proxy', async t => {
  const dashboard = JSON.parse(readFileSync(`${CHART}/dashboards/strangler.json`, 'utf8')) as { panels: Panel[]; templating: { list: Array<{ name: string; query?: { query: string } }> } }
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new', (req, res) => {
    res.writeHead(req.url === '/api/orders/fail' ? 503 : 200, { 'content-type': 'application/json' })
    res.end('{"name":"new"}')
  })
  const carts = '  carts:\n    match: { paths: [/api/carts] }\n    legacy: monolith\n    new: dead\n    weight: 100\n    fallback: true\n'
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 50, upstreamExtra: `  dead:\n    url: http://127.0.0.1:${await deadPort()}`, extra: carts }))
  const prom = await prometheus(t, `127.0.0.1:${p.adminPort}`, { namespace: NAMESPACE, pod: `${FULLNAME}-0` }, JOB)

  // Traffic in two rounds with a scrape between them, so that every rate has two different samples.
  const traffic = async (): Promise<number> => {
    await tally(`${p.base}/api/orders/1`, 40)
    await tally(`${p.base}/api/orders/fail`, 10)
    await tally(`${p.base}/api/carts/1`, 10)
    await get(`${p.base}/api/%2e%2e/x`)
    return 50
  }
  const scraped = (n: number) => (v: Vector[]): boolean => v.length === 1 && Number(v[0].value[1]) === n
  const ordersTotal = 'sum(strangler_requests_total{context="orders"})'
  const first = await traffic()
  await prom.until(ordersTotal, scraped(first))
  const second = first + await traffic()
  await prom.until(ordersTotal, scraped(second))

  const grafana = (expr: string): string => expr
    .replaceAll('$namespace', NAMESPACE).replaceAll('$job', JOB).replaceAll('$context', '.*').replaceAll('$__rate_interval', '1m')
  const targets = dashboard.panels.flatMap(panel => (panel.targets ?? []).map((target, i) => ({ name: `${panel.title} #${i + 1}`, expr: grafana(target.expr) })))
  t.equal(targets.length, 14, 'every target of every panel')
  for (const { name, expr } of targets) {
    const result = await prom.query(expr)
    t.ok(result.length > 0, `${name}: returns data`, { expr })
    t.ok(result.some(s => !Number.isNaN(Number(s.value[1]))), `${name}: a number, not only NaN`, { result })
  }

  // The template variables use Grafana's label_values(SELECTOR, LABEL).
  const expected: Record<string, string[]> = { namespace: [NAMESPACE], job: [JOB], context: ['carts', 'default', 'orders'] }
  for (const v of dashboard.templating.list) {
    if (v.query === undefined || v.name === 'datasource') continue
    const m = /^label_values\((.+), (\w+)\)$/.exec(v.query.query)
    t.ok(m !== null, `${v.name}: label_values(...)`)
    if (m === null) continue
    t.strictSame(await prom.labelValues(m[2], grafana(m[1])), expected[v.name], `$${v.name} lists what is scraped`)
  }
})
