import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { linkSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import t from 'tap'
import { watchConfig } from '../../src/config/watch.ts'
import type { ReloadResult } from '../../src/main.ts'
import { get, proxy, recordingLog, routes, tempDir, upstream, whoAnswers } from '../helpers.ts'

t.test('a saved weight change is observed on the next request', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 0 }), { watch: true })
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'legacy')
  const reloaded = once(p, 'reload')
  writeFileSync(p.file, routes({ legacy: legacy.url, new: next.url, weight: 100 }))
  const [result] = await reloaded as [ReloadResult]
  t.equal(result.ok, true)
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'new')
})

t.test('an atomic rename and a Kubernetes-style symlink swap are both picked up', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 0 }), { watch: true })
  const tmp = path.join(path.dirname(p.file), '.routes.yaml.tmp')
  writeFileSync(tmp, routes({ legacy: legacy.url, new: next.url, weight: 100 }))
  const reloaded = once(p, 'reload')
  renameSync(tmp, p.file)
  await reloaded
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'new')
})

t.test('a file that is still changing is read only once it has been stable for the debounce interval', async t => {
  // The writer truncates the file through the watched directory (one event),
  // then appends through a hard link in another directory, which the watcher
  // does not see: only the file itself can tell that it is still changing.
  const root = tempDir(t)
  mkdirSync(path.join(root, 'watched'))
  mkdirSync(path.join(root, 'elsewhere'))
  const file = path.join(root, 'watched', 'routes.yaml')
  const link = path.join(root, 'elsewhere', 'routes.yaml')
  writeFileSync(file, 'first')
  linkSync(file, link)
  const reads: string[] = []
  let read: () => void = () => {}
  const firstRead = new Promise<void>(resolve => { read = resolve })
  const stop = watchConfig(file, () => {
    reads.push(readFileSync(file, 'utf8'))
    read()
  }, 100)
  t.teardown(stop)
  const writer = spawn(process.execPath, ['-e', `
    const fs = require('node:fs')
    fs.writeFileSync(${JSON.stringify(file)}, 'start:')
    let n = 0
    const timer = setInterval(() => {
      fs.appendFileSync(${JSON.stringify(link)}, 'x')
      if (++n === 60) clearInterval(timer)
    }, 10)
  `], { stdio: 'inherit' })
  const [code] = await once(writer, 'exit')
  t.equal(code, 0)
  await firstRead
  t.same(reads, [`start:${'x'.repeat(60)}`], 'one read, of the finished file')
})

t.test('an invalid file keeps the last good config serving and reports every error', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 100 }))
  writeFileSync(p.file, routes({ legacy: legacy.url, new: next.url, weight: 0 }).replace('legacy: monolith', 'legacy: nowhere').replace('weight: 0', 'weight: 250'))
  const result = await p.reload('admin')
  t.equal(result.ok, false)
  if (!result.ok) {
    t.equal(result.errors.length, 2, result.errors.join('\n'))
    for (const e of result.errors) t.match(e, new RegExp(`^${p.file.replace(/[.\\]/g, '\\$&')}:\\d+:\\d+ `))
  }
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'new')
  t.same(p.lastError, result.ok ? null : result.errors)
})

t.test('50 reloads during continuous traffic: zero failed requests', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 0 }))
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 })
  t.teardown(() => agent.destroy())
  let running = true
  const outcomes: Record<string, number> = {}
  const client = async (): Promise<void> => {
    while (running) {
      const r = await get(`${p.base}/api/orders/1`, { agent }).then(r => r.status === 200 ? JSON.parse(r.body).name : `status ${r.status}`, (err: Error) => err.message)
      outcomes[r] = (outcomes[r] ?? 0) + 1
    }
  }
  const clients = Array.from({ length: 8 }, client)
  for (let i = 1; i <= 50; i++) {
    writeFileSync(p.file, routes({ legacy: legacy.url, new: next.url, weight: i % 2 === 0 ? 0 : 100 }))
    t.equal((await p.reload('admin')).ok, true)
    const side = i % 2 === 0 ? 'legacy' : 'new'
    // a request sent after the swap sees the new table
    t.equal(await whoAnswers(`${p.base}/api/orders/2`, { agent }), side)
  }
  running = false
  await Promise.all(clients)
  t.same(Object.keys(outcomes).sort(), ['legacy', 'new'], JSON.stringify(outcomes))
})

t.test('a reload logs one line saying what changed, and closes the pools of upstreams that are gone', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const other = await upstream(t, 'other')
  const { log, lines } = recordingLog()
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 10 }), { log })
  await whoAnswers(`${p.base}/api/orders`)
  await whoAnswers(`${p.base}/x`)
  writeFileSync(p.file, routes({ legacy: legacy.url, new: other.url, weight: 30 }))
  t.equal((await p.reload('signal')).ok, true)
  const entry = lines.find(l => l.msg === 'config reloaded')
  t.same(entry?.contexts, [{ context: 'orders', kind: 'changed', weight: { from: 10, to: 30 }, fields: [] }])
  t.same(entry?.upstreams, { added: [], removed: [], changed: ['orders-svc'] })
  t.equal(entry?.trigger, 'signal')
  t.equal(lines.filter(l => l.msg === 'config reloaded').length, 1)
  t.same(p.local?.pools.origins, [legacy.url], `the pool of ${next.url} is closed`)
  t.equal((await p.reload('signal')).ok, true)
  t.equal(lines.filter(l => l.msg === 'config reloaded').length, 1, 'an unchanged file logs nothing')
})

t.test('a 10,000-context file is loaded off the event loop and routes every context', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 0 }))
  let big = `server: { listen: 127.0.0.1:0, admin: 127.0.0.1:0 }\nupstreams:\n  monolith: { url: ${legacy.url} }\n  constructor: { url: ${next.url} }\ndefault: monolith\ncontexts:\n`
  for (let i = 0; i < 10_000; i++) big += `  c${i}: { match: { paths: [/svc/${i}] }, legacy: monolith, new: constructor, weight: ${i % 2 === 0 ? 100 : 0} }\n`
  t.ok(big.length > 64 * 1024, 'large enough for the loader thread')
  writeFileSync(p.file, big)
  const r = await p.reload('admin')
  t.equal(r.ok, true)
  t.equal(p.config.contexts.length, 10_000)
  t.equal(Object.getPrototypeOf(p.config.upstreams), null, 'the null prototype is restored after the thread')
  t.equal(await whoAnswers(`${p.base}/svc/9998/x`), 'new')
  t.equal(await whoAnswers(`${p.base}/svc/9999/x`), 'legacy')
  t.equal(await whoAnswers(`${p.base}/svc/10000`), 'legacy')
})

t.test('reloads run in order, one at a time', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 0 }))
  writeFileSync(p.file, routes({ legacy: legacy.url, new: next.url, weight: 100 }).replace(/orders-svc/g, 'constructor'))
  const results = await Promise.all([p.reload('admin'), p.reload('admin'), p.reload('admin')])
  t.same(results.map(r => r.ok && r.changed), [true, false, false])
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'new')
})

t.test('a reload that changes many contexts logs the first 100 and counts the rest', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const { log, lines } = recordingLog()
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 0 }), { log })
  let many = `server: { listen: 127.0.0.1:0, admin: 127.0.0.1:0 }\nupstreams:\n  monolith: { url: ${legacy.url} }\n  orders-svc: { url: ${next.url} }\ndefault: monolith\ncontexts:\n`
  for (let i = 0; i < 150; i++) many += `  c${i}: { match: { paths: [/c/${i}] }, legacy: monolith, new: orders-svc, weight: 1 }\n`
  writeFileSync(p.file, many)
  t.equal((await p.reload('admin')).ok, true)
  const entry = lines.find(l => l.msg === 'config reloaded')
  t.equal(entry?.contexts.length, 100)
  t.equal(entry?.moreContexts, 51, '150 added and 1 removed')
})
