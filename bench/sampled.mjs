// Where a request's CPU time goes at full speed, sampled rather than counted:
//
//   node bench/sampled.mjs                    the ceiling sending the forwarding headers, then strangler-proxy
//   node bench/sampled.mjs --only ceiling,ceiling-forwarding,strangler --rounds 5 --top 40
//   node bench/sampled.mjs --dist bench/out/dist-before
//   --only ceiling-forwarding,strangler-legacy,strangler
//                                            strangler-legacy: weight 0, every request to legacy
//                                            (one upstream pool, as the ceiling has; strangler splits 50/50)
//
// Each target serves `wrk -t1 -c50` (the 'api' mix of bench/lib/mix.lua) in
// turn, round after round, while `perf record -e cpu-clock` samples its
// process, every thread, kernel included. The samples become microseconds per
// request by kind of code: the kernel, V8's and Node's C++, the garbage
// collector, V8's inline-cache builtins and its other builtins, JavaScript by
// package and tier, and the rest (libc, libuv). hotpath.mjs counts which
// instructions run; this shows what they cost on this machine, where a larger
// working set makes the same instructions, and the same system calls, take
// longer. Needs perf (Debian's linux-perf); JavaScript is named from node's
// --perf-basic-prof map, where code V8 moved may keep a stale name.
// Build first (npm run build): strangler-proxy runs from dist/.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import * as configs from './lib/configs.mjs'
import { freePort, killAllNow, run, sleep, start, stop, stopAll, waitForLine } from './lib/procs.mjs'
import * as targetOf from './lib/targets.mjs'
import { wrk } from './lib/wrk.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const HZ = 4999

const { values: opts } = parseArgs({
  options: {
    only: { type: 'string', default: 'ceiling-forwarding,strangler' },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    top: { type: 'string', default: '0' },
    dist: { type: 'string', default: join(ROOT, 'dist') }
  }
})

function targets (dir, ports) {
  const strangler = (file, weight) => targetOf.strangler(resolve(opts.dist), configs.strangler2(dir, file, ports, { weight }))
  return {
    ceiling: targetOf.ceiling(ports[0]),
    'ceiling-forwarding': targetOf.ceiling(ports[0], true),
    strangler: strangler('strangler.yaml', 50),
    'strangler-legacy': strangler('strangler-legacy.yaml', 0)
  }
}

/** The kind of code a sampled symbol (`[k]` kernel or `[.]` user) belongs to. */
function kind (ring, symbol) {
  if (ring === 'k') return 'kernel'
  if (symbol.startsWith('JS:')) {
    const tier = { '*': 'optimized', '^': 'baseline', '+': 'maglev', '~': 'interpreted' }[symbol[3]] ?? 'other'
    if (symbol.includes('wasm')) return 'JavaScript: WebAssembly (undici\'s llhttp)'
    const where = symbol.includes('/dist/') || symbol.includes(' dist/')
      ? 'strangler-proxy'
      : /fastify|find-my-way|avvio/.test(symbol) ? 'fastify' : symbol.includes('undici') ? 'undici' : symbol.includes('bench/servers') ? 'the ceiling' : symbol.includes('node:') ? 'node' : 'other'
    return `JavaScript: ${where} (${tier})`
  }
  if (symbol.startsWith('Builtins_')) return /IC/.test(symbol) ? 'V8 builtins: inline caches' : 'V8 builtins: other'
  if (/Scaveng|Marking|MarkCompact|Sweep|v8::internal::Heap::/.test(symbol)) return 'V8 garbage collector'
  if (/^(v8|node|cppgc|heap)::/.test(symbol) || /^void (v8|node)::/.test(symbol)) return 'V8 and Node C++'
  return 'other user space (libc, libuv, unnamed)'
}

/** perf samples of `pid` while wrk runs against `port`: { requests, symbols: Map('[k] name' → samples) }. */
async function round (name, pid, port) {
  const data = join(dir, `${name}.perf`)
  const perf = start('perf', 'perf', ['record', '-e', 'cpu-clock', '-F', String(HZ), '-p', String(pid), '-o', data])
  await sleep(500)
  const stats = await wrk(`http://127.0.0.1:${port}`, opts.duration, 50, 'api')
  process.kill(perf.pid, 'SIGINT')
  await perf.done
  if (stats.statusErrors > 0) throw new Error(`${name}: ${stats.statusErrors} answers were not 200`)
  const report = await run('perf', ['report', '-i', data, '--sort', 'sym', '--stdio', '-F', 'sample,sym', '--percent-limit', '0'])
  const symbols = new Map()
  for (const l of report.out.split('\n')) {
    const m = /^\s+(\d+)\s+\[(.)\]\s+(.*)$/.exec(l)
    if (m === null) continue
    const key = `[${m[2]}] ${m[3].trim().replace(`file://${ROOT}`, '')}`
    symbols.set(key, (symbols.get(key) ?? 0) + Number(m[1]))
  }
  return { requests: stats.requests, symbols }
}

/** The run's temporary directory (configs, nginx's files, perf's data): removed at the end, also when the run fails. */
let dir = null

async function main () {
  dir = mkdtempSync(join(tmpdir(), 'strangler-sampled-'))
  const ports = [await freePort(), await freePort()]
  const upstream = start('nginx', 'nginx', ['-p', dir, '-c', configs.nginxUpstream(dir, ports), '-e', 'stderr', '-g', 'daemon off;'])
  await sleep(500)
  if (upstream.exited !== null) throw new Error(`nginx: ${upstream.err}`)
  const all = targets(dir, ports)
  const running = []
  for (const name of opts.only.split(',')) {
    const proc = start(name, process.execPath, ['--perf-basic-prof', ...all[name].args], { cwd: dir })
    let port = 0
    await waitForLine(proc, line => (port = all[name].ready(line)) > 0)
    await wrk(`http://127.0.0.1:${port}`, 3, 50, 'api')
    running.push({ name, proc, port, requests: 0, perRound: [], symbols: new Map() })
  }
  for (let r = 0; r < Number(opts.rounds); r++) {
    for (const t of running) {
      process.stderr.write(`round ${r + 1}: ${t.name}\n`)
      const s = await round(t.name, t.proc.pid, t.port)
      let samples = 0
      for (const [k, v] of s.symbols) {
        t.symbols.set(k, (t.symbols.get(k) ?? 0) + v)
        samples += v
      }
      t.requests += s.requests
      t.perRound.push(samples / HZ * 1e6 / s.requests)
    }
  }
  for (const t of running) await stop(t.proc)
  await stop(upstream)
  rmSync(dir, { recursive: true, force: true })
  for (const t of running) rmSync(`/tmp/perf-${t.proc.pid}.map`, { force: true })
  report(running)
}

function report (running) {
  const us = (t, samples) => samples / HZ * 1e6 / t.requests
  const byKind = running.map(t => {
    const m = new Map()
    for (const [k, v] of t.symbols) {
      const c = kind(k[1], k.slice(4))
      m.set(c, (m.get(c) ?? 0) + v)
    }
    return m
  })
  const kinds = [...new Set(byKind.flatMap(m => [...m.keys()]))].sort((a, b) => (byKind.at(-1).get(b) ?? 0) - (byKind.at(-1).get(a) ?? 0))
  console.log(`CPU µs per request, sampled at ${HZ} Hz under wrk -t1 -c50, ${opts.rounds} rounds of ${opts.duration} s per target, taken in turn\n`)
  console.log(`| | ${running.map(t => t.name).join(' | ')} |\n|---|${running.map(() => '--:').join('|')}|`)
  console.log(`| **all** | ${running.map(t => `**${us(t, [...t.symbols.values()].reduce((a, b) => a + b, 0)).toFixed(1)}**`).join(' | ')} |`)
  for (const k of kinds) console.log(`| ${k} | ${running.map((t, i) => us(t, byKind[i].get(k) ?? 0).toFixed(2)).join(' | ')} |`)
  console.log(`| each round, all | ${running.map(t => t.perRound.map(x => x.toFixed(1)).join(', ')).join(' | ')} |`)
  console.log(`| requests/s, all rounds | ${running.map(t => Math.round(t.requests / (Number(opts.rounds) * Number(opts.duration))).toLocaleString('en')).join(' | ')} |`)
  const top = Number(opts.top)
  if (top === 0 || running.length < 2) return
  const [a, b] = running.slice(-2)
  const keys = new Set([...a.symbols.keys(), ...b.symbols.keys()])
  const diff = [...keys].map(k => [k, us(a, a.symbols.get(k) ?? 0), us(b, b.symbols.get(k) ?? 0)]).sort((x, y) => Math.abs(y[2] - y[1]) - Math.abs(x[2] - x[1]))
  console.log(`\n${b.name} minus ${a.name}, µs per request, top ${top}\n`)
  for (const [k, x, y] of diff.slice(0, top)) console.log(`${(y - x).toFixed(2).padStart(7)}  ${x.toFixed(2).padStart(6)} → ${y.toFixed(2).padStart(6)}  ${k}`)
}

process.on('exit', killAllNow)
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => stopAll().then(() => process.exit(130)))
main().catch(async err => {
  console.error(err)
  await stopAll()
  if (dir !== null) rmSync(dir, { recursive: true, force: true })
  process.exit(1)
})
