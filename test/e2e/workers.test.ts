import { once } from 'node:events'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import t from 'tap'
import { configFile, get, routes, serveProcess, upstream } from '../helpers.ts'

function childrenOf (pid: number): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry))
    } catch {}
  }
  return out
}

async function sides (url: string, n: number): Promise<string[]> {
  const names = new Set<string>()
  // a fresh connection each: the cluster spreads connections over the workers
  for (let i = 0; i < n; i++) names.add(JSON.parse((await get(url)).body).name)
  return [...names].sort()
}

t.test('server.workers: one proxy on every core, one admin, changes applied to every worker', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const server = '  workers: 2\n  adminToken: tok'
  const file = configFile(t, routes({ legacy: legacy.url, new: next.url, weight: 100, server }))
  const { child, until } = serveProcess(t, file, ['--no-watch'])
  const started = await until('proxy listening')
  t.equal(started.workers, 2)
  const base = `http://${started.listen}`
  const admin = `http://${started.admin}`
  const workers = childrenOf(child.pid as number)
  t.equal(workers.length, 2, 'two worker processes')
  t.same(await sides(`${base}/api/orders`, 20), ['new'])

  const rb = await get(`${admin}/contexts/orders/rollback`, { method: 'POST', headers: { authorization: 'Bearer tok' } })
  t.equal(rb.status, 200)
  t.equal(JSON.parse(rb.body).warning, undefined, 'every worker confirmed')
  t.same(await sides(`${base}/api/orders`, 20), ['legacy'], 'the rollback is in force on every worker when the call returns')

  writeFileSync(file, routes({ legacy: legacy.url, new: next.url, weight: 0, server }).replace('/api/orders]', '/api/orders, /api/carts]'))
  t.equal((await get(`${admin}/reload`, { method: 'POST', headers: { authorization: 'Bearer tok' } })).status, 200)
  t.same(await sides(`${base}/api/carts`, 20), ['legacy'], 'the reload is in force on every worker')
  t.equal((await get(`${admin}/status`)).status, 200)
  t.same(JSON.parse((await get(`${admin}/status`)).body).contexts[0].override, null, 'the YAML change cleared the override')
  const w = await get(`${admin}/contexts/orders/weight`, { method: 'PUT', headers: { authorization: 'Bearer tok', 'content-type': 'application/json' }, body: '{"weight":100}' })
  t.equal(w.status, 200)

  const metrics = (await get(`${admin}/metrics`)).body
  const served = [...metrics.matchAll(/^strangler_requests_total\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0)
  t.equal(served, 60, 'the aggregate counts the requests of every worker')
  t.match(metrics, /^strangler_config_reloads_total\{result="success"\} 1$/m, 'control metrics exported once')
  t.equal((metrics.match(/^# TYPE strangler_requests_total /gm) ?? []).length, 1)
  // Each series is the sum over the workers, whichever worker took each request: orders on new 20,
  // then orders on legacy 20 after the rollback and 20 more for /api/carts, which the reload gave orders.
  t.match(metrics, /^strangler_requests_total\{context="orders",side="new",code="2xx"\} 20$/m)
  t.match(metrics, /^strangler_requests_total\{context="orders",side="legacy",code="2xx"\} 40$/m)
  t.match(metrics, /^strangler_request_duration_seconds_count\{context="orders",side="legacy"\} 40$/m)
  t.match(metrics, /^strangler_request_duration_seconds_bucket\{le="\+Inf",context="orders",side="new"\} 20$/m)
  t.match(metrics, /^strangler_context_weight_percent\{context="orders",source="effective"\} 100$/m)
  t.equal((metrics.match(/^# TYPE /gm) ?? []).length, new Set(metrics.match(/^# TYPE \S+/gm)).size, 'each family once')

  process.kill(workers[0], 'SIGKILL')
  const died = await until('proxy worker died; starting a new one')
  t.equal(died.pid, workers[0])
  const replacement = await until('proxy worker listening')
  t.not(replacement.pid, workers[0])
  t.same(childrenOf(child.pid as number).sort(), [workers[1], replacement.pid].sort())
  // The replacement got the config and the override in force.
  t.same(await sides(`${base}/api/orders`, 20), ['new'])

  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
  t.same(childrenOf(child.pid as number), [], 'workers are gone')
})
