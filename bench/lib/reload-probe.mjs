// Compiles and hot-reloads a 10,000-context config in the proxy's own process
// and records the longest event-loop stall around each reload.
//   node bench/lib/reload-probe.mjs DIR PORT_A PORT_B REPS   → one JSON line
// The proxy runs in-process (startStrangler from dist/main.js, file watching
// off so that only the reloads measured here happen). A 1 ms interval timer
// notes how late it fires: the longest gap from 1 s before to 1 s after each
// reload (which takes in garbage collection of the old table) is the stall.
import { Session } from 'node:inspector/promises'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { pino } from 'pino'
import { startStrangler } from '../../dist/main.js'
import { loadConfigFile } from '../../dist/config/index.js'
import { compileTable } from '../../dist/routing/table.js'
import { diffConfigs } from '../../dist/config/diff.js'
import { Metrics } from '../../dist/metrics.js'
import { summarise } from './cpuprofile.mjs'
import { strangler2, stranglerMany } from './configs.mjs'

const [dir, portA, portB, repsArg = '5'] = process.argv.slice(2)
const ports = [Number(portA), Number(portB)]
const reps = Number(repsArg)
const COUNT = 10_000

// What `serve` logs to stdout (pino, synchronous), sent to a file instead.
const log = pino({ name: 'strangler' }, pino.destination({ dest: `${dir}/reload-probe.log`, sync: true }))
const file = strangler2(dir, 'reload.yaml', ports)
const s = await startStrangler({ configFile: file, log, watch: false })
const token = 'bench-token'

// Process CPU (all threads), to tell a stall's own work from time spent waiting for a core on a busy machine.
const cpuMs = () => {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}
let last = performance.now()
let lastCpu = cpuMs()
const gaps = [] // [time, gap ms, CPU ms used during the gap]
const drift = setInterval(() => {
  const now = performance.now()
  const cpu = cpuMs()
  gaps.push([now, now - last, cpu - lastCpu])
  last = now
  lastCpu = cpu
}, 1)
const elu = monitorEventLoopDelay({ resolution: 1 })
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** The longest gap in [from, to] and the CPU used during it. */
function maxGap (from, to) {
  let max = [0, 0]
  for (const [t, g, cpu] of gaps) if (t >= from && t - g <= to && g > max[0]) max = [g, cpu]
  return max
}

async function measure (label, write, reload) {
  write()
  await sleep(1000)
  const t0 = performance.now()
  const result = await reload()
  const ms = performance.now() - t0
  await sleep(1000)
  const end = performance.now()
  if (!result.ok || !result.changed) throw new Error(`${label}: reload did not apply: ${JSON.stringify(result)}`)
  const [stall, stallCpu] = maxGap(t0 - 1000, end)
  return { label, ms, stallMs: stall - 1, stallCpuMs: stallCpu, contexts: s.config.contexts.length }
}

const inProcess = async () => await s.reload('admin')
const overHttp = async () => {
  const res = await fetch(`http://${s.adminAddress}/reload`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  return res.json()
}

elu.enable()
const runs = []
let weight = 50
for (let r = 0; r < reps; r++) {
  // 2 → 10,000: the first time a team adds the contexts.
  runs.push(await measure('2 → 10,000 contexts, s.reload()', () => stranglerMany(dir, 'reload.yaml', ports, COUNT, weight), inProcess))
  // 10,000 → 10,000 with every weight changed: a PR on a large file.
  weight = weight === 50 ? 51 : 50
  runs.push(await measure('10,000 → 10,000 (weights changed), s.reload()', () => stranglerMany(dir, 'reload.yaml', ports, COUNT, weight), inProcess))
  weight = weight === 50 ? 51 : 50
  runs.push(await measure('10,000 → 10,000 (weights changed), POST /reload', () => stranglerMany(dir, 'reload.yaml', ports, COUNT, weight), overHttp))
  // back to 2 for the next repetition
  runs.push(await measure('10,000 → 2 contexts, s.reload()', () => strangler2(dir, 'reload.yaml', ports), inProcess))
}
elu.disable()
clearInterval(drift)

// Where the time of a reload goes: read + parse + validate, compile, the diff
// that the reload logs; and, outside the reload, the weight gauges at a scrape.
const manyFile = stranglerMany(dir, 'parts.yaml', ports, COUNT, 50)
const otherFile = stranglerMany(dir, 'parts2.yaml', ports, COUNT, 51)
const parts = { loadMs: [], compileMs: [], diffMs: [], logJsonMs: [], weightsScrapeMs: [] }
const metrics = new Metrics({ processMetrics: false })
let weighed = []
metrics.exportWeights(() => weighed)
for (let r = 0; r < reps; r++) {
  let t = performance.now()
  const a = loadConfigFile(manyFile, { env: process.env, unsetVars: 'error' }).config
  parts.loadMs.push(performance.now() - t)
  t = performance.now()
  compileTable(a)
  parts.compileMs.push(performance.now() - t)
  const b = loadConfigFile(otherFile, { env: process.env, unsetVars: 'error' }).config
  t = performance.now()
  const diff = diffConfigs(a, b)
  parts.diffMs.push(performance.now() - t)
  t = performance.now()
  JSON.stringify(diff)
  parts.logJsonMs.push(performance.now() - t)
  weighed = b.contexts.map(c => ({ context: c.name, configured: c.weight, effective: c.weight, overridden: false }))
  t = performance.now()
  await metrics.registry.getSingleMetricAsString('strangler_context_weight_percent')
  parts.weightsScrapeMs.push(performance.now() - t)
}

// One more reload (2 → 10,000) under the CPU profiler: where the main thread's time
// goes (work moved to another thread does not show here, and cannot stall the proxy).
stranglerMany(dir, 'reload.yaml', ports, COUNT, 52)
const session = new Session()
session.connect()
await session.post('Profiler.enable')
await session.post('Profiler.setSamplingInterval', { interval: 100 })
await session.post('Profiler.start')
const profiled = await s.reload('admin') // sync or async, depending on the build
const { profile } = await session.post('Profiler.stop')
session.disconnect()
if (!profiled.ok) throw new Error(`profiled reload failed: ${JSON.stringify(profiled)}`)
const reloadProfile = summarise(profile, 15)

const rss = process.memoryUsage().rss
await s.close()
process.stdout.write(`${JSON.stringify({ runs, parts, reloadProfile, eluMaxMs: elu.max / 1e6, rssMiB: rss / 1048576 })}\n`)
process.exit(0)
