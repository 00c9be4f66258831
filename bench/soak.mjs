// Soak: the proxy (`node dist/cli.js serve`, a child process) under steady load
// for SOAK_MINUTES (default 30), its config swapped every 10 s the way
// Kubernetes updates a mounted ConfigMap (`..data` symlink swap), and its "new"
// upstream killed (SIGKILL) and restarted every minute. Every 10 s the proxy's
// RSS and open file descriptors are read from /proc/PID; at the end their
// min, max and slope are written to the `## Soak` section of bench/RESULTS.md
// (the section is replaced if present, appended if not; nothing else in the
// file is touched).
//
//   npm run build && node bench/soak.mjs
//   SOAK_MINUTES=2 node bench/soak.mjs
//
// Knobs (env): SOAK_MINUTES (30), RATE requests/s (200), CONCURRENCY (16),
// RELOAD_EVERY_S (10), KILL_EVERY_S (60), DOWN_S seconds the upstream stays
// dead (2), SAMPLE_EVERY_S (10), WARMUP_S left out of the steady-state slope
// (60), RESULTS (bench/RESULTS.md).
// Exit 1 if the proxy died, a reload was missed or rejected, or a request that
// could not have met the dead upstream failed.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const CLI = path.join(HERE, '..', 'dist', 'cli.js')

/** Child mode: an upstream that answers its name, on `port` (0: any), printing the port once listening. */
function runUpstream (name, port) {
  const body = JSON.stringify({ name })
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    })
  })
  server.listen(port, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ listening: server.address().port })}\n`))
}

function env (name, fallback) {
  const v = process.env[name]
  return v === undefined || v === '' ? fallback : Number(v)
}

/** Spawns `args` with node; resolves once a stdout JSON line satisfies `ready`, with the child and that line. */
function startChild (args, ready, onLine = () => {}) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    let done = false
    createInterface({ input: child.stdout }).on('line', line => {
      let entry
      try { entry = JSON.parse(line) } catch { return }
      onLine(entry)
      if (!done && ready(entry)) {
        done = true
        resolve({ child, entry })
      }
    })
    child.once('exit', (code, signal) => {
      if (!done) reject(new Error(`${args.join(' ')} exited (${code ?? signal}) before it was ready`))
    })
  })
}

/** Every upstream child alive, so that the end of the run stops each, whatever was restarting then. */
const upstreams = new Set()

async function startUpstream (name, port) {
  const { child, entry } = await startChild([fileURLToPath(import.meta.url), '--upstream', name, String(port)], e => typeof e.listening === 'number')
  upstreams.add(child)
  child.once('exit', () => upstreams.delete(child))
  return { child, port: entry.listening }
}

function killAndWait (child, signal) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise(resolve => {
    child.once('exit', (code, sig) => resolve({ code, signal: sig }))
    child.kill(signal)
  })
}

/** The Kubernetes layout: dir/..<ts>/routes.yaml, dir/..data -> ..<ts>, dir/routes.yaml -> ..data/routes.yaml. */
class ConfigMapDir {
  #n = 0
  constructor (dir, text) {
    this.dir = dir
    symlinkSync(this.#version(text), path.join(dir, '..data'))
    symlinkSync(path.join('..data', 'routes.yaml'), path.join(dir, 'routes.yaml'))
    this.file = path.join(dir, 'routes.yaml')
  }

  #name (n) { return `..2026_01_01_00_00_00.${String(n).padStart(9, '0')}` }

  #version (text) {
    const name = this.#name(++this.#n)
    mkdirSync(path.join(this.dir, name))
    writeFileSync(path.join(this.dir, name, 'routes.yaml'), text)
    return name
  }

  swap (text) {
    const previous = this.#name(this.#n)
    const tmp = path.join(this.dir, '..data_tmp')
    symlinkSync(this.#version(text), tmp)
    renameSync(tmp, path.join(this.dir, '..data'))
    rmSync(path.join(this.dir, previous), { recursive: true })
  }
}

function configYaml ({ legacyPort, newPort, weight, stateFile }) {
  return `server:
  listen: 127.0.0.1:0
  admin: 127.0.0.1:0
  adminToken: soak-token
  stateFile: ${stateFile}
upstreams:
  monolith:
    url: http://127.0.0.1:${legacyPort}
  orders-svc:
    url: http://127.0.0.1:${newPort}
    timeout: 5s
default: monolith
contexts:
  orders:
    match:
      paths: [/api/orders]
    legacy: monolith
    new: orders-svc
    weight: ${weight}
`
}

function sample (pid, t0) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const rssKb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN)
  return { t: (performance.now() - t0) / 1000, rssMiB: rssKb / 1024, fds: readdirSync(`/proc/${pid}/fd`).length }
}

/** Least-squares slope of y over x. */
function slope (xs, ys) {
  const n = xs.length
  if (n < 2) return NaN
  const mx = xs.reduce((a, b) => a + b, 0) / n
  const my = ys.reduce((a, b) => a + b, 0) / n
  let num = 0
  let den = 0
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my)
    den += (xs[i] - mx) ** 2
  }
  return num / den
}

async function main () {
  if (!existsSync(CLI)) {
    console.error(`${CLI} is missing: run npm run build first`)
    return 2
  }
  const minutes = env('SOAK_MINUTES', 30)
  const rate = env('RATE', 200)
  const concurrency = env('CONCURRENCY', 16)
  const reloadEvery = env('RELOAD_EVERY_S', 10) * 1000
  const killEvery = env('KILL_EVERY_S', 60) * 1000
  const downFor = env('DOWN_S', 2) * 1000
  const sampleEvery = env('SAMPLE_EVERY_S', 10) * 1000
  const warmup = env('WARMUP_S', 60)
  const resultsFile = process.env.RESULTS ?? path.join(HERE, 'RESULTS.md')
  const duration = minutes * 60_000

  const dir = mkdtempSync(path.join(os.tmpdir(), 'strangler-soak-'))
  const configDir = path.join(dir, 'config')
  mkdirSync(configDir)
  const legacy = await startUpstream('legacy', 0)
  let next = await startUpstream('new', 0)
  const newPort = next.port
  let weight = 25
  const yaml = w => configYaml({ legacyPort: legacy.port, newPort, weight: w, stateFile: path.join(dir, 'state.json') })
  const cm = new ConfigMapDir(configDir, yaml(weight))

  const logs = { reloaded: 0, rejected: 0, errors: [] }
  const proxy = await startChild([CLI, 'serve', '--config', cm.file], e => e.msg === 'proxy listening', e => {
    if (e.msg === 'config reloaded') logs.reloaded++
    else if (e.msg?.startsWith('config reload rejected')) logs.rejected++
    else if (e.level >= 50) logs.errors.push(e.msg)
  })
  let proxyExit = null
  proxy.child.once('exit', (code, signal) => { proxyExit = { code, signal } })
  const base = `http://${proxy.entry.listen}`
  const pid = proxy.child.pid
  console.log(`soak: ${minutes} min, proxy pid ${pid} on ${base}, ${rate} req/s, reload every ${reloadEvery / 1000} s, "new" killed every ${killEvery / 1000} s for ${downFor / 1000} s`)

  // Windows in which the "new" upstream may be unreachable: kill → restart + 1 s.
  const down = []
  const isDown = t => down.some(([from, to]) => t >= from && t <= (to ?? Infinity) + 1000)
  const t0 = performance.now()
  const outcomes = { requests: 0, ok: 0, expectedFailures: 0, unexpected: {} }
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  let running = true
  let seq = 0

  const one = () => new Promise(resolve => {
    const i = seq++
    const target = i % 5 === 4 ? `/other/${i}` : `/api/orders/${i}`
    const sentAt = performance.now()
    const fail = what => {
      outcomes.requests++
      // only /api/orders can meet the dead upstream, and only around a kill
      if (target.startsWith('/api/orders') && (isDown(sentAt) || isDown(performance.now()))) outcomes.expectedFailures++
      else outcomes.unexpected[what] = (outcomes.unexpected[what] ?? 0) + 1
      resolve()
    }
    const req = http.get(`${base}${target}`, { agent }, res => {
      res.resume()
      res.on('error', err => fail(err.code ?? err.message))
      res.on('end', () => {
        if (res.statusCode !== 200) return fail(`status ${res.statusCode}`)
        outcomes.requests++
        outcomes.ok++
        resolve()
      })
    })
    req.on('error', err => fail(err.code ?? err.message))
  })
  const gap = 1000 * concurrency / rate
  const workers = Array.from({ length: concurrency }, async () => {
    while (running) {
      const started = performance.now()
      await one()
      const wait = gap - (performance.now() - started)
      if (wait > 0 && running) await new Promise(resolve => setTimeout(resolve, wait))
    }
  })

  let writes = 0
  const reloader = setInterval(() => {
    weight = weight === 25 ? 75 : 25
    cm.swap(yaml(weight))
    writes++
  }, reloadEvery)

  let kills = 0
  let restartFailures = 0
  const killer = setInterval(() => {
    // no kill the run would end before the restart of
    if (performance.now() - t0 > duration - downFor - 2000) return
    const window = [performance.now(), null]
    down.push(window)
    kills++
    const dead = next.child
    void killAndWait(dead, 'SIGKILL').then(() => new Promise(resolve => setTimeout(resolve, downFor))).then(async () => {
      if (!running) return
      try {
        next = await startUpstream('new', newPort)
      } catch (err) {
        restartFailures++
        console.error(`restarting "new" failed: ${err.message}`)
      }
      window[1] = performance.now()
    })
  }, killEvery)

  const samples = [sample(pid, t0)]
  const sampler = setInterval(() => {
    if (proxyExit !== null) return
    const s = sample(pid, t0)
    samples.push(s)
    console.log(`  t=${s.t.toFixed(0)}s rss=${s.rssMiB.toFixed(1)} MiB fds=${s.fds} requests=${outcomes.requests} reloads=${logs.reloaded}/${writes} kills=${kills}`)
  }, sampleEvery)

  await new Promise(resolve => {
    const end = setTimeout(resolve, duration)
    proxy.child.once('exit', () => {
      clearTimeout(end)
      resolve()
    })
  })
  clearInterval(reloader)
  clearInterval(killer)
  clearInterval(sampler)
  // the last swap needs the watcher's debounce and a reload to show in the log
  await new Promise(resolve => setTimeout(resolve, 1000))
  if (proxyExit === null) samples.push(sample(pid, t0))
  running = false
  await Promise.all(workers)
  agent.destroy()

  const died = proxyExit !== null
  const exit = proxyExit ?? await killAndWait(proxy.child, 'SIGTERM')
  await Promise.all([...upstreams].map(child => killAndWait(child, 'SIGTERM')))
  rmSync(dir, { recursive: true, force: true })

  const unexpected = Object.values(outcomes.unexpected).reduce((a, b) => a + b, 0)
  const steady = samples.filter(s => s.t >= warmup)
  const stat = key => {
    const ys = samples.map(s => s[key])
    const late = steady.map(s => s[key])
    return {
      min: Math.min(...ys),
      max: Math.max(...ys),
      slope: slope(samples.map(s => s.t / 60), ys),
      steadyMin: Math.min(...late),
      steadyMax: Math.max(...late),
      steadySlope: slope(steady.map(s => s.t / 60), late)
    }
  }
  const rss = stat('rssMiB')
  const fds = stat('fds')
  const ok = !died && exit.code === 0 && logs.reloaded === writes && logs.rejected === 0 && unexpected === 0 && restartFailures === 0

  const f0 = n => Number.isFinite(n) ? String(n) : 'n/a'
  const f1 = n => Number.isFinite(n) ? n.toFixed(1) : 'n/a'
  const f2 = n => Number.isFinite(n) ? (n >= 0 ? '+' : '') + n.toFixed(2) : 'n/a'
  const section = `## Soak

\`SOAK_MINUTES=${minutes} node bench/soak.mjs\`, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, Node ${process.version}, ${os.cpus().length} CPUs.
The proxy (\`node dist/cli.js serve\`, one process) under ${rate} requests/s from ${concurrency} keep-alive clients
(4 in 5 to a context split 25/75 between two upstreams, 1 in 5 to the default), its config swapped every
${reloadEvery / 1000} s as Kubernetes does (\`..data\` symlink swap, weight 25 ↔ 75), and its "new" upstream
killed with SIGKILL every ${killEvery / 1000} s and restarted ${downFor / 1000} s later. RSS and open file
descriptors of the proxy process from /proc every ${sampleEvery / 1000} s (${samples.length} samples).

| proxy process | min | max | slope | after the first ${warmup} s: min | max | slope |
|---|---|---|---|---|---|---|
| RSS (MiB) | ${f1(rss.min)} | ${f1(rss.max)} | ${f2(rss.slope)} MiB/min | ${f1(rss.steadyMin)} | ${f1(rss.steadyMax)} | ${f2(rss.steadySlope)} MiB/min |
| open fds | ${fds.min} | ${fds.max} | ${f2(fds.slope)} /min | ${f0(fds.steadyMin)} | ${f0(fds.steadyMax)} | ${f2(fds.steadySlope)} /min |

The first sample is taken before any load, so whole-run figures include start-up and warm-up;
the columns after the first ${warmup} s are the steady state. Slopes are least-squares fits over the samples.

- Requests: ${outcomes.requests} sent, ${outcomes.ok} answered 200, ${outcomes.expectedFailures} failed while "new" was down (502: no fallback configured), ${unexpected} other failures${unexpected > 0 ? ` ${JSON.stringify(outcomes.unexpected)}` : ''}.
- Reloads: ${writes} swaps, ${logs.reloaded} applied, ${logs.rejected} rejected. Upstream kills: ${kills}${restartFailures > 0 ? `, ${restartFailures} restarts failed` : ''}.
- The proxy ${died ? `DIED during the run (${JSON.stringify(proxyExit)})` : `ran throughout and exited ${exit.code} on SIGTERM`}.${logs.errors.length > 0 ? ` Error log lines: ${[...new Set(logs.errors)].join('; ')}.` : ''}
- Samples (minute: RSS MiB / fds): ${samples.map(s => `${(s.t / 60).toFixed(1)}: ${f1(s.rssMiB)}/${s.fds}`).join(', ')}.
`
  const previous = existsSync(resultsFile) ? readFileSync(resultsFile, 'utf8') : ''
  const at = previous.search(/^## Soak[ \t]*$/m)
  let updated
  if (at === -1) updated = previous === '' ? `# Benchmark results\n\n${section}` : `${previous.replace(/\n*$/, '\n\n')}${section}`
  else {
    const rest = previous.slice(at + 1).search(/^## /m)
    updated = previous.slice(0, at) + section + (rest === -1 ? '' : `\n${previous.slice(at + 1 + rest)}`)
  }
  writeFileSync(resultsFile, updated)
  console.log(`\n${section}\n${ok ? 'soak: ok' : 'soak: FAILED'} (written to ${path.relative(process.cwd(), resultsFile)})`)
  return ok ? 0 : 1
}

if (process.argv[2] === '--upstream') runUpstream(process.argv[3], Number(process.argv[4]))
else process.exitCode = await main()
