import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import t from 'tap'
import { configFile, get, routes, serveProcess, upstream } from '../helpers.ts'

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname

t.test('SIGTERM with requests in flight: every one completes, /readyz turns 503, exit 0', async t => {
  let release: () => void = () => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  let arrived = 0
  let allArrived: () => void = () => {}
  const arrivedAll = new Promise<void>(resolve => { allArrived = resolve })
  const slow = await upstream(t, 'slow', (_req, res) => {
    if (++arrived === 5) allArrived()
    void gate.then(() => res.end('done'))
  })
  const file = configFile(t, routes({ legacy: slow.url, new: slow.url, weight: 0 }))
  const child = spawn(process.execPath, [CLI, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const lines = createInterface({ input: child.stdout })
  let ports: { proxy: string; admin: string } | null = null
  const logs: Array<Record<string, any>> = []
  const listening = new Promise<void>(resolve => lines.on('line', line => {
    const entry = JSON.parse(line)
    logs.push(entry)
    if (entry.msg === 'proxy listening') {
      ports = { proxy: entry.listen, admin: entry.admin }
      resolve()
    }
  }))
  await listening
  const { proxy, admin } = ports as unknown as { proxy: string; admin: string }
  const inflight = Array.from({ length: 5 }, (_, i) => get(`http://${proxy}/r${i}`))
  await arrivedAll
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  // The admin listener stays up while draining and says so.
  let ready = await get(`http://${admin}/readyz`)
  while (ready.status === 200) ready = await get(`http://${admin}/readyz`)
  t.equal(ready.status, 503)
  await t.rejects(get(`http://${proxy}/late`), 'new connections are refused')
  release()
  const results = await Promise.all(inflight)
  t.same(results.map(r => [r.status, r.body]), Array.from({ length: 5 }, () => [200, 'done']))
  const [code] = await exited
  t.equal(code, 0)
  t.ok(logs.some(l => l.msg === 'shutting down'))
})

t.test('SIGHUP reloads the config of a running process', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const file = configFile(t, routes({ legacy: legacy.url, new: next.url, weight: 0 }))
  const { child, until } = serveProcess(t, file, ['--no-watch'])
  const { listen } = await until('proxy listening')
  t.equal(JSON.parse((await get(`http://${listen}/api/orders`)).body).name, 'legacy')
  writeFileSync(file, routes({ legacy: legacy.url, new: next.url, weight: 100 }))
  t.equal(JSON.parse((await get(`http://${listen}/api/orders`)).body).name, 'legacy', 'not watching: nothing changes until the signal')
  child.kill('SIGHUP')
  const entry = await until('config reloaded')
  t.equal(entry.trigger, 'signal')
  t.same(entry.contexts, [{ context: 'orders', kind: 'changed', weight: { from: 0, to: 100 }, fields: [] }])
  t.equal(JSON.parse((await get(`http://${listen}/api/orders`)).body).name, 'new')
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
})
