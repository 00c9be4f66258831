// Per-request cost of the Node ceiling (bench/servers/node-undici.mjs) and of
// strangler-proxy (2 contexts, all features), counted rather than timed, so the
// figures hold on a busy machine:
//
//   node bench/hotpath.mjs                 CPU instructions per request (valgrind callgrind, all threads)
//   node bench/hotpath.mjs --top 30        ... and the 30 functions with the most, JavaScript ones named
//   node bench/hotpath.mjs --only ceiling,ceiling-forwarding
//                                          the ceiling, then the ceiling sending strangler-proxy's
//                                          four forwarding headers (X-Forwarded-*, X-Request-Id)
//   node bench/hotpath.mjs --syscalls      system calls per request (strace -c -f), no valgrind
//   node bench/hotpath.mjs --alloc --requests 40000
//                                          bytes V8 allocates per request (--trace-gc-nvp), no valgrind
//   --cache                                also simulated cache misses per request (callgrind --cache-sim)
//   node bench/hotpath.mjs --only strangler --dist bench/out/dist-before
//                                          another build of strangler-proxy (a copy of dist/ under the repo)
//   --node-args=--max-semi-space-size=2    node options for the targets (a V8 flag's cost, say)
//   --only strangler,traced,traced-json    tracing off, then on (OTLP http/protobuf, then http/json) to a
//                                          local receiver that answers 200 and discards (see "Tracing")
//   --label NAME                           results in bench/out/hotpath/NAME.json
//   --rescue                               strangler-proxy with fallback and a 25% shadow on both contexts
//
// Each target gets `--warmup` requests, then `--samples` samples of `--requests`
// requests (the 'api' mix of bench/lib/mix.lua, `--connections` keep-alive
// connections). Reported: the median sample; the median once the work the
// process does while idle (timers: strangler-proxy's event-loop delay monitor,
// say) is taken out for as long as each sample took, since under valgrind a
// process runs some 50 times slower and its timers weigh that much more per
// request than at full speed; and the median without V8's compilers as well,
// which run when code gets hot, not per request. Upstream: nginx on two ports.
// Build first (npm run build): strangler-proxy runs from dist/.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import * as configs from './lib/configs.mjs'
import { connect } from './lib/fixed-count.mjs'
import { freePort, killAllNow, run, sleep, start, stop, stopAll, waitForLine } from './lib/procs.mjs'
import * as targetOf from './lib/targets.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const OUT = join(ROOT, 'bench/out/hotpath')

const { values: opts } = parseArgs({
  options: {
    requests: { type: 'string', default: '5000' },
    samples: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '40000' },
    connections: { type: 'string', default: '50' },
    only: { type: 'string', default: 'ceiling,strangler' },
    top: { type: 'string', default: '0' },
    syscalls: { type: 'boolean', default: false },
    cache: { type: 'boolean', default: false },
    alloc: { type: 'boolean', default: false },
    dist: { type: 'string', default: join(ROOT, 'dist') },
    'node-args': { type: 'string', default: '' },
    rescue: { type: 'boolean', default: false },
    label: { type: 'string' }
  }
})
const requests = Number(opts.requests)
const samples = Number(opts.samples)
const top = Number(opts.top)

/** An OTLP/HTTP receiver that answers 200 to every POST and keeps only counts. */
async function otlpSink () {
  const sink = { url: '', posts: 0, bytes: 0, types: new Set() }
  const server = http.createServer((req, res) => {
    sink.posts++
    sink.types.add(req.headers['content-type'])
    req.on('data', chunk => { sink.bytes += chunk.length })
    req.on('end', () => res.writeHead(200).end())
  })
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  sink.url = `http://127.0.0.1:${server.address().port}`
  sink.close = () => new Promise(resolve => server.close(resolve))
  return sink
}

function targets (dir, ports, sink) {
  const strangler = targetOf.strangler(resolve(opts.dist), configs.strangler2(dir, 'strangler.yaml', ports, { rescue: opts.rescue }))
  const traced = protocol => ({ ...strangler, env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_EXPORTER_OTLP_PROTOCOL: protocol } })
  return {
    ceiling: targetOf.ceiling(ports[0]),
    // The ceiling sending the four headers strangler-proxy adds to every upstream request.
    'ceiling-forwarding': targetOf.ceiling(ports[0], true),
    strangler,
    traced: traced('http/protobuf'),
    'traced-json': traced('http/json')
  }
}

async function startTarget (name, target, dir) {
  const node = [...(top > 0 ? ['--perf-basic-prof'] : []), ...opts['node-args'].split(' ').filter(Boolean), ...target.args]
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_'))), ...target.env }
  const proc = opts.syscalls || opts.alloc
    ? start(name, process.execPath, [...(opts.alloc ? ['--trace-gc-nvp'] : []), ...node], { cwd: dir, env })
    : start(name, 'valgrind', ['--tool=callgrind', '--smc-check=all-non-file', ...(opts.cache ? ['--cache-sim=yes'] : []), `--callgrind-out-file=${join(OUT, `${name}.%p.out`)}`, process.execPath, ...node], { cwd: dir, env })
  let port = 0
  // Ten minutes: under valgrind on a loaded machine, a start can take several.
  await waitForLine(proc, line => (port = target.ready(line)) > 0, 600_000)
  return { proc, port }
}

const IDLE_SECONDS = 10

/** V8's compilers: they run when code gets hot, not for every request. */
const COMPILER = /v8::internal::(compiler|maglev|turboshaft|baseline)::|v8::internal::Compiler::|Builtins_CompileLazy/

/** The dump callgrind wrote last for this process. */
function lastDump (name, pid) {
  const dumps = readdirSync(OUT).filter(f => f.startsWith(`${name}.${pid}.out.`))
  return join(OUT, dumps.sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop())).pop())
}

/** Instructions (all threads) callgrind counted while `work` ran, and the seconds it took. */
async function counted (name, pid, work) {
  await run('callgrind_control', ['-z', String(pid)])
  const started = performance.now()
  await work()
  await run('callgrind_control', ['-d', String(pid)])
  const file = lastDump(name, pid)
  const dump = readFileSync(file, 'utf8')
  const names = /^events: (.*)$/m.exec(dump)[1].split(' ')
  // callgrind leaves trailing zero counts out of the line.
  const counts = /^summary: (.*)$/m.exec(dump)[1].split(' ')
  const events = Object.fromEntries(names.map((name, i) => [name, Number(counts[i] ?? 0)]))
  return { total: events.Ir, events, seconds: (performance.now() - started) / 1000, file }
}

/**
 * Instructions per request of each sample: all of them; without what the
 * process does anyway while idle for as long as the sample took (timers, at
 * valgrind's pace); and without V8's compilers as well. The dump file of the
 * median sample.
 */
async function instructions (name, proc, port) {
  const idle = await counted(name, proc.pid, () => sleep(IDLE_SECONDS * 1000))
  const perSecondIdle = idle.total / idle.seconds
  // Reconnected after the idle time: the server has closed idle keep-alive connections.
  const client = await connect(port, Number(opts.connections))
  await client.send(2000)
  const dumps = []
  for (let i = 0; i < samples; i++) {
    dumps.push(await counted(name, proc.pid, async () => {
      const failed = await client.send(requests)
      if (failed > 0) throw new Error(`${name}: ${failed} answers were not 200`)
    }))
  }
  client.close()
  const rows = []
  for (const d of dumps) {
    let compiler = 0
    for (const [fn, ir] of Object.entries(await functions(d.file, null))) if (COMPILER.test(fn)) compiler += ir
    const net = d.total / requests - perSecondIdle * d.seconds / requests
    const misses = (...events) => events.reduce((sum, e) => sum + d.events[e], 0) / requests
    const cache = opts.cache ? { l1: misses('I1mr', 'D1mr', 'D1mw'), ll: misses('ILmr', 'DLmr', 'DLmw') } : {}
    rows.push({ total: d.total / requests, net, netWithoutCompiler: net - compiler, compiler, file: d.file, ...cache })
  }
  const median = key => [...rows].sort((a, b) => a[key] - b[key])[Math.floor((samples - 1) / 2)]
  return {
    samples: rows.map(r => Math.round(r.total)),
    compiler: rows.map(r => Math.round(r.compiler)),
    idlePerSecond: Math.round(perSecondIdle),
    perRequest: Math.round(median('total').total),
    net: Math.round(median('net').net),
    netWithoutCompiler: Math.round(median('netWithoutCompiler').netWithoutCompiler),
    ...(opts.cache ? { l1Misses: Math.round(median('l1').l1), llMisses: Math.round(median('ll').ll) } : {}),
    file: median('total').file
  }
}

/**
 * callgrind_annotate also lists the roots of each thread (main, start_thread)
 * with their inclusive cost: V8's generated code defeats its call tracking.
 */
const ROOTS = /^(\.\/csu\/.*|\.\/misc\/.*clone|\.\/nptl\/.*start_thread|\(below main\)|0x0000000000[0-9a-f]+|main|node::Start\(.*|node::NodeMainInstance::Run\(.*|node::SpinEventLoopInternal\(.*)$/

/**
 * Exclusive instructions per request by function; JIT code named from node's
 * --perf-basic-prof map when `pid` is given.
 */
async function functions (file, pid) {
  const { out } = await run('callgrind_annotate', ['--inclusive=no', '--threshold=100', '--auto=no', file])
  // V8 reuses freed code space: the latest entry covering an address names it.
  const map = pid === null
    ? []
    : readFileSync(`/tmp/perf-${pid}.map`, 'utf8').split('\n').filter(Boolean).map(l => {
        const [start, size, ...name] = l.split(' ')
        return { start: parseInt(start, 16), end: parseInt(start, 16) + parseInt(size, 16), name: name.join(' ') }
      })
  const jsName = address => {
    for (let i = map.length - 1; i >= 0; i--) {
      if (address >= map[i].start && address < map[i].end) return map[i].name.replace(`file://${ROOT}`, '')
    }
    return 'JIT code (unnamed)'
  }
  const byName = new Map()
  for (const line of out.split('\n')) {
    const m = /^\s*([\d,]+) \([\s\d.]+%\)\s+(.*)$/.exec(line)
    if (m === null || m[2].startsWith('PROGRAM TOTALS')) continue
    const jit = /^\?\?\?:0x([0-9a-f]+) \[\?\?\?\]$/.exec(m[2])
    const name = jit !== null ? jsName(parseInt(jit[1], 16)) : m[2].replace(/^\?\?\?:/, '').replace(/ \[.*\]$/, '')
    if (ROOTS.test(name)) continue
    const ir = Number(m[1].replaceAll(',', '')) / requests
    byName.set(name, (byName.get(name) ?? 0) + ir)
  }
  return Object.fromEntries([...byName].sort((a, b) => b[1] - a[1]).map(([name, ir]) => [name, Math.round(ir)]))
}

/**
 * Bytes V8 allocated per request: the sum of `allocated=` (since the GC
 * before) of the GCs while the requests ran, so a young generation's worth
 * (up to 16 MB) either side is uncertain: send enough requests to make it small.
 * Also what survived a scavenge (copied, or promoted to the old generation):
 * what the garbage collector's work grows with.
 */
async function allocation (proc, client) {
  let bytes = 0
  let survived = 0
  let promoted = 0
  let gcs = 0
  let rest = ''
  const field = (line, name) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(line)?.[1] ?? 0)
  const count = chunk => {
    const lines = (rest + chunk).split('\n')
    rest = lines.pop()
    for (const line of lines) {
      if (!/\ballocated=/.test(line)) continue
      bytes += field(line, 'allocated')
      survived += field(line, 'new_space_survived')
      promoted += field(line, 'promoted')
      gcs++
    }
  }
  proc.child.stdout.on('data', count)
  const failed = await client.send(requests * samples)
  proc.child.stdout.off('data', count)
  if (failed > 0) throw new Error(`${proc.name}: ${failed} answers were not 200`)
  const n = requests * samples
  return { bytesPerRequest: Math.round(bytes / n), survivedPerRequest: Math.round(survived / n), promotedPerRequest: Math.round(promoted / n), gcsPer1000: Number((gcs * 1000 / n).toFixed(2)) }
}

/** System calls per request, by call, of the process and all its threads (strace -c -f attached after warm-up). */
async function syscalls (name, proc, client) {
  const file = join(OUT, `${name}.strace`)
  const strace = start('strace', 'strace', ['-c', '-f', '-o', file, '-p', String(proc.pid)])
  while (!strace.err.includes('attached')) await sleep(50)
  const failed = await client.send(requests * samples)
  if (failed > 0) throw new Error(`${name}: ${failed} answers were not 200`)
  process.kill(strace.pid, 'SIGINT')
  await strace.done
  const calls = {}
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/.exec(line)
    if (m !== null && m[2] !== 'total') calls[m[2]] = Number(m[1]) / (requests * samples)
  }
  return calls
}

/** The run's temporary directory (configs, nginx's files): removed at the end, also when the run fails. */
let dir = null

async function main () {
  mkdirSync(OUT, { recursive: true })
  dir = mkdtempSync(join(tmpdir(), 'strangler-hotpath-'))
  const ports = [await freePort(), await freePort()]
  const upstream = start('nginx', 'nginx', ['-p', dir, '-c', configs.nginxUpstream(dir, ports), '-e', 'stderr', '-g', 'daemon off;'])
  await sleep(500)
  if (upstream.exited !== null) throw new Error(`nginx: ${upstream.err}`)
  const sink = await otlpSink()
  const all = targets(dir, ports, sink)
  const results = {}
  for (const name of opts.only.split(',')) {
    const { proc, port } = await startTarget(name, all[name], dir)
    process.stderr.write(`${name}: ${opts.warmup} warm-up requests\n`)
    const client = await connect(port, Number(opts.connections))
    await client.send(Number(opts.warmup))
    if (opts.syscalls || opts.alloc) {
      results[name] = opts.alloc ? await allocation(proc, client) : await syscalls(name, proc, client)
      client.close()
    } else {
      client.close()
      results[name] = await instructions(name, proc, port)
      if (top > 0) results[name].functions = await functions(results[name].file, proc.pid)
    }
    await stop(proc)
    // node --perf-basic-prof's map of JIT code (with --top), read by functions().
    rmSync(`/tmp/perf-${proc.pid}.map`, { force: true })
    if (all[name].env !== undefined && !opts.syscalls && !opts.alloc) {
      results[name].exported = { posts: sink.posts, bytes: sink.bytes, types: [...sink.types] }
      Object.assign(sink, { posts: 0, bytes: 0, types: new Set() })
    }
    process.stderr.write(`${name}: ${JSON.stringify(results[name].perRequest ?? results[name])}\n`)
  }
  await sink.close()
  await stop(upstream)
  rmSync(dir, { recursive: true, force: true })
  writeFileSync(join(OUT, `${opts.label ?? (opts.syscalls ? 'syscalls' : opts.alloc ? 'alloc' : 'instructions')}.json`), `${JSON.stringify(results, null, 2)}\n`)
  report(results)
}

function report (results) {
  const names = Object.keys(results)
  if (opts.alloc) {
    console.log('| target | bytes allocated per request | survived a scavenge | promoted to the old generation | GCs per 1,000 requests |\n|---|--:|--:|--:|--:|')
    for (const n of names) {
      const r = results[n]
      console.log(`| ${n} | ${r.bytesPerRequest.toLocaleString('en')} | ${r.survivedPerRequest.toLocaleString('en')} | ${r.promotedPerRequest.toLocaleString('en')} | ${r.gcsPer1000} |`)
    }
    return
  }
  if (opts.syscalls) {
    const calls = [...new Set(names.flatMap(n => Object.keys(results[n])))]
      .filter(c => names.some(n => results[n][c] >= 0.001))
      .sort((a, b) => results[names[0]][b] - results[names[0]][a])
    console.log(`| system call, per request | ${names.join(' | ')} |\n|---|${names.map(() => '--:').join('|')}|`)
    for (const c of calls) console.log(`| ${c} | ${names.map(n => (results[n][c] ?? 0).toFixed(3)).join(' | ')} |`)
    return
  }
  const figures = xs => xs.map(x => x.toLocaleString('en')).join(', ')
  console.log(`Instructions per request, median of ${samples} samples of ${requests} requests\n`)
  const cache = opts.cache ? ' L1 misses | last-level misses |' : ''
  console.log(`| target | all | without idle work | and without V8's compilers | idle instructions/s | samples (all) | compilers in each |${cache}\n|---|--:|--:|--:|--:|---|---|${opts.cache ? '--:|--:|' : ''}`)
  for (const n of names) {
    const r = results[n]
    const misses = opts.cache ? ` ${r.l1Misses.toLocaleString('en')} | ${r.llMisses.toLocaleString('en')} |` : ''
    console.log(`| ${n} | ${r.perRequest.toLocaleString('en')} | ${r.net.toLocaleString('en')} | ${r.netWithoutCompiler.toLocaleString('en')} | ${r.idlePerSecond.toLocaleString('en')} | ${figures(r.samples)} | ${figures(r.compiler)} |${misses}`)
  }
  if (opts.cache) console.log('\nMisses per request in the median sample, all of it (idle work and compilers included), as callgrind simulates the caches of this CPU.')
  for (const n of names.filter(n => results[n].exported !== undefined)) {
    const { posts, bytes, types } = results[n].exported
    console.log(`\n${n}: the receiver got ${posts} POSTs, ${bytes.toLocaleString('en')} bytes (${types.join(', ')})`)
  }
  if (top === 0) return
  for (const n of names) {
    console.log(`\n${n}: exclusive instructions per request, top ${top}\n`)
    for (const [f, ir] of Object.entries(results[n].functions).slice(0, top)) console.log(`${String(ir).padStart(8)}  ${f}`)
  }
  if (names.length !== 2) return
  const [a, b] = names.map(n => results[n].functions)
  const diff = [...new Set([...Object.keys(a), ...Object.keys(b)])].map(f => [f, (b[f] ?? 0) - (a[f] ?? 0)]).sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]))
  console.log(`\n${names[1]} minus ${names[0]}, exclusive instructions per request, top ${top}\n`)
  for (const [f, d] of diff.slice(0, top)) console.log(`${String(d).padStart(8)}  ${String(a[f] ?? 0).padStart(7)} → ${String(b[f] ?? 0).padStart(7)}  ${f}`)
}

process.on('exit', killAllNow)
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => stopAll().then(() => process.exit(130)))
main().catch(async err => {
  console.error(err)
  await stopAll()
  if (dir !== null) rmSync(dir, { recursive: true, force: true })
  process.exit(1)
})
