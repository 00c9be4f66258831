// Fleet propagation: how long a runtime change made through one replica takes
// to be in force on the others, with REPLICAS `strangler serve` processes
// sharing one redis-server on loopback TCP.
//
//   npm run build && node bench/fleet.mjs        (needs redis-server: apt-get install redis-server)
//
// Each of FLIPS rounds rolls the context back (or clears the rollback) through
// replica 0 while every other replica is asked, back to back over a kept-alive
// connection, which side serves the context. Reported per round:
// - call: the admin call, from sending it to its answer (it returns once every
//   live replica has confirmed the change);
// - seen: for each other replica, from sending the call to the first answer
//   that shows the change among probes sent after the call (an upper bound on
//   propagation: it includes one probe's round trip).
// Writes the `## Fleet propagation` section of bench/RESULTS.md (replaced if
// present). Knobs (env): REPLICAS (3), FLIPS (50), PROBE_GAP_MS pause between
// two probes of one replica (1; 0: back to back, which keeps both cores busy
// and measures the machine's saturation more than the propagation),
// RESULTS (bench/RESULTS.md).
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const CLI = path.join(HERE, '..', 'dist', 'cli.js')
const REPLICAS = Number(process.env.REPLICAS ?? 3)
const FLIPS = Number(process.env.FLIPS ?? 50)
const GAP_MS = Number(process.env.PROBE_GAP_MS ?? 1)
const RESULTS = process.env.RESULTS ?? path.join(HERE, 'RESULTS.md')
const TOKEN = 'bench-token'

const children = []
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })

function lines (child) {
  return createInterface({ input: child.stdout })[Symbol.asyncIterator]()
}

async function until (it, test) {
  for (;;) {
    const { value, done } = await it.next()
    if (done) throw new Error('process ended early')
    if (test(value)) return value
  }
}

async function freePort () {
  const s = net.createServer()
  await new Promise(resolve => s.listen(0, '127.0.0.1', resolve))
  const { port } = s.address()
  await new Promise(resolve => s.close(resolve))
  return port
}

async function upstream (name) {
  const body = JSON.stringify({ name })
  const server = http.createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
    res.end(body)
  })
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  return { server, url: `http://127.0.0.1:${server.address().port}` }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })

function request (url, opts = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent, ...opts }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', c => { body += c })
      res.on('end', () => resolve({ status: res.statusCode, body }))
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

function pct (sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
}

const ms = n => n.toFixed(2)

async function main () {
  if (!existsSync(CLI)) throw new Error('run npm run build first')
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strangler-fleet-'))
  const port = await freePort()
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(redis)
  await until(lines(redis), l => /ready to accept connections/i.test(l))
  const legacy = await upstream('legacy')
  const next = await upstream('new')
  const file = path.join(dir, 'routes.yaml')
  writeFileSync(file, `server:
  listen: 127.0.0.1:0
  admin: 127.0.0.1:0
  adminToken: ${TOKEN}
  state:
    redis: { url: "redis://127.0.0.1:${port}", keyPrefix: "bench:" }
upstreams:
  monolith: { url: "${legacy.url}" }
  svc: { url: "${next.url}" }
default: monolith
contexts:
  orders:
    match: { paths: [/api/orders] }
    legacy: monolith
    new: svc
    weight: 100
`)
  const replicas = []
  for (let i = 0; i < REPLICAS; i++) {
    const child = spawn(process.execPath, [CLI, 'serve', '--config', file, '--no-watch'], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(child)
    const up = JSON.parse(await until(lines(child), l => l.includes('"proxy listening"')))
    replicas.push({ proxy: `http://${up.listen}/api/orders`, admin: `http://${up.admin}` })
  }

  const calls = []
  const seen = []
  for (let round = 0; round < FLIPS; round++) {
    const rollback = round % 2 === 0
    const expect = rollback ? 'legacy' : 'new'
    let done = false
    let start = Infinity
    const watchers = replicas.slice(1).map(async r => {
      for (;;) {
        const sent = performance.now()
        const { body } = await request(r.proxy)
        if (JSON.parse(body).name === expect && sent >= start) return performance.now() - start
        if (done && performance.now() - start > 5000) throw new Error('the change never arrived')
        if (GAP_MS > 0) await new Promise(resolve => setTimeout(resolve, GAP_MS))
      }
    })
    // Let every watcher have one request in flight before the change.
    await new Promise(resolve => setTimeout(resolve, 20))
    start = performance.now()
    const answer = await request(`${replicas[0].admin}/contexts/orders/${rollback ? 'rollback' : 'override'}`, {
      method: rollback ? 'POST' : 'DELETE',
      headers: { authorization: `Bearer ${TOKEN}` }
    })
    calls.push(performance.now() - start)
    if (answer.status !== 200 || JSON.parse(answer.body).warning !== undefined) throw new Error(`admin call: ${answer.status} ${answer.body}`)
    done = true
    seen.push(...await Promise.all(watchers))
  }
  calls.sort((a, b) => a - b)
  seen.sort((a, b) => a - b)

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
  const section = `## Fleet propagation

${new Date().toISOString()}, \`node bench/fleet.mjs\`: ${REPLICAS} \`strangler serve\` processes and one
redis-server ${execFileSync('redis-server', ['--version']).toString().match(/v=(\S+)/)?.[1] ?? ''} on loopback TCP, ${os.cpus().length} × ${cpu}, Node ${process.version}; the
probes, the upstreams, Redis and the replicas share these cores. ${FLIPS} changes (rollback, then clear,
alternately) through replica 0's admin API while each other replica is probed every ${GAP_MS} ms (a probe's answer is the
first to show the change if it was sent after the call started).

| ms | median | p95 | max |
|---|---|---|---|
| admin call, until every replica confirmed | ${ms(pct(calls, 0.5))} | ${ms(pct(calls, 0.95))} | ${ms(calls[calls.length - 1])} |
| first answer showing the change on another replica (${seen.length} samples; includes one probe round trip) | ${ms(pct(seen, 0.5))} | ${ms(pct(seen, 0.95))} | ${ms(seen[seen.length - 1])} |

Target: under 50 ms on loopback.
`
  const text = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : ''
  const at = text.indexOf('## Fleet propagation')
  const rest = at === -1 ? '' : text.slice(at).slice(1).search(/^## /m)
  const out = at === -1 ? `${text.trimEnd()}\n\n${section}` : `${text.slice(0, at)}${section}${rest === -1 ? '' : `\n${text.slice(at + 1 + rest)}`}`
  writeFileSync(RESULTS, out)
  process.stdout.write(section)
  rmSync(dir, { recursive: true, force: true })
  legacy.server.close()
  next.server.close()
  agent.destroy()
  process.exit(0)
}

main().catch(err => {
  process.stderr.write(`${err.stack}\n`)
  process.exit(1)
})
