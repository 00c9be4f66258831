// Per-request cost of the Node ceiling (bench/servers/node-undici.mjs) and of
// strangler-proxy (2 contexts, all features), counted rather than timed, so the
// figures hold on a busy machine:
//
//   node bench/hotpath.mjs                 CPU instructions per request (valgrind callgrind, all threads)
//   node bench/hotpath.mjs --top 30        ... and the 30 functions with the most, JavaScript ones named
//   node bench/hotpath.mjs --syscalls      system calls per request (strace -c -f), no valgrind
//   node bench/hotpath.mjs --only strangler --dist bench/out/dist-before
//                                          another build of strangler-proxy (a copy of dist/ under the repo)
//   --label NAME                           results in bench/out/hotpath/NAME.json
//
// Each target gets `--warmup` requests, then `--samples` samples of `--requests`
// requests (the 'api' mix of bench/lib/mix.lua, `--connections` keep-alive
// connections); the median sample is reported, and the least one: samples
// vary with V8's background compilation and garbage collection, which only
// ever add. Under valgrind a process runs some 50 times slower, so its timers
// (strangler-proxy's event-loop delay monitor, say) weigh more per request
// than at full speed. Upstream: nginx on two ports.
// Build first (npm run build): strangler-proxy runs from dist/.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import * as configs from './lib/configs.mjs'
import { connect } from './lib/fixed-count.mjs'
import { freePort, killAllNow, run, sleep, start, stop, stopAll, waitForLine } from './lib/procs.mjs'

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
    dist: { type: 'string', default: join(ROOT, 'dist') },
    label: { type: 'string' }
  }
})
const requests = Number(opts.requests)
const samples = Number(opts.samples)
const top = Number(opts.top)

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]

function targets (dir, ports) {
  return {
    ceiling: {
      args: [join(ROOT, 'bench/servers/node-undici.mjs'), `http://127.0.0.1:${ports[0]}`],
      ready: line => line?.port
    },
    strangler: {
      args: [join(resolve(opts.dist), 'cli.js'), 'serve', '--config', configs.strangler2(dir, 'strangler.yaml', ports)],
      ready: line => line?.msg === 'proxy listening' && Number(line.listen.split(':').pop())
    }
  }
}

async function startTarget (name, target, dir) {
  const node = [...(top > 0 ? ['--perf-basic-prof'] : []), ...target.args]
  const proc = opts.syscalls
    ? start(name, process.execPath, node, { cwd: dir })
    : start(name, 'valgrind', ['--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${join(OUT, `${name}.%p.out`)}`, process.execPath, ...node], { cwd: dir })
  let port = 0
  await waitForLine(proc, line => (port = target.ready(line)) > 0, 120_000)
  return { proc, port }
}

/** Total instructions (all threads) of each sample, and the dump file of the median one. */
async function instructions (name, proc, client) {
  const counted = []
  for (let i = 0; i < samples; i++) {
    await run('callgrind_control', ['-z', String(proc.pid)])
    const failed = await client.send(requests)
    if (failed > 0) throw new Error(`${name}: ${failed} answers were not 200`)
    await run('callgrind_control', ['-d', String(proc.pid)])
    const file = readdirSync(OUT).filter(f => f.startsWith(`${name}.${proc.pid}.out.`)).sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop())).pop()
    const total = Number(/^summary: (\d+)/m.exec(readFileSync(join(OUT, file), 'utf8'))[1])
    counted.push({ perRequest: total / requests, file: join(OUT, file) })
  }
  const m = median(counted.map(c => c.perRequest))
  return { samples: counted.map(c => Math.round(c.perRequest)), perRequest: Math.round(m), least: Math.round(Math.min(...counted.map(c => c.perRequest))), file: counted.find(c => c.perRequest === m).file }
}

/**
 * Exclusive instructions per request by function; JIT code named from node's
 * --perf-basic-prof map. callgrind_annotate also lists the roots of each
 * thread (main, start_thread) with their inclusive cost: V8's generated code
 * defeats its call tracking. Those lines are left out.
 */
async function functions (file, pid, total) {
  const { out } = await run('callgrind_annotate', ['--inclusive=no', '--threshold=100', '--auto=no', file])
  // V8 reuses freed code space: the latest entry covering an address names it.
  const map = readFileSync(`/tmp/perf-${pid}.map`, 'utf8').split('\n').filter(Boolean).map(l => {
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
    const ir = Number(m[1].replaceAll(',', '')) / requests
    if (ir > total / 40 && /main|clone|start_thread|node::Start|NodeMainInstance|SpinEventLoop|^0x/.test(name)) continue
    byName.set(name, (byName.get(name) ?? 0) + ir)
  }
  return Object.fromEntries([...byName].sort((a, b) => b[1] - a[1]).map(([name, ir]) => [name, Math.round(ir)]))
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

async function main () {
  mkdirSync(OUT, { recursive: true })
  const dir = mkdtempSync(join(tmpdir(), 'strangler-hotpath-'))
  const ports = [await freePort(), await freePort()]
  const upstream = start('nginx', 'nginx', ['-p', dir, '-c', configs.nginxUpstream(dir, ports), '-e', 'stderr', '-g', 'daemon off;'])
  await sleep(500)
  if (upstream.exited !== null) throw new Error(`nginx: ${upstream.err}`)
  const all = targets(dir, ports)
  const results = {}
  for (const name of opts.only.split(',')) {
    const { proc, port } = await startTarget(name, all[name], dir)
    process.stderr.write(`${name}: ${opts.warmup} warm-up requests\n`)
    const client = await connect(port, Number(opts.connections))
    await client.send(Number(opts.warmup))
    if (opts.syscalls) {
      results[name] = await syscalls(name, proc, client)
    } else {
      results[name] = await instructions(name, proc, client)
      if (top > 0) results[name].functions = await functions(results[name].file, proc.pid, results[name].perRequest)
    }
    client.close()
    await stop(proc)
    process.stderr.write(`${name}: ${JSON.stringify(results[name].perRequest ?? results[name])}\n`)
  }
  await stop(upstream)
  writeFileSync(join(OUT, `${opts.label ?? (opts.syscalls ? 'syscalls' : 'instructions')}.json`), `${JSON.stringify(results, null, 2)}\n`)
  report(results)
}

function report (results) {
  const names = Object.keys(results)
  if (opts.syscalls) {
    const calls = [...new Set(names.flatMap(n => Object.keys(results[n])))]
      .filter(c => names.some(n => results[n][c] >= 0.001))
      .sort((a, b) => results[names[0]][b] - results[names[0]][a])
    console.log(`| system call, per request | ${names.join(' | ')} |\n|---|${names.map(() => '--:').join('|')}|`)
    for (const c of calls) console.log(`| ${c} | ${names.map(n => (results[n][c] ?? 0).toFixed(3)).join(' | ')} |`)
    return
  }
  console.log(`| target | instructions per request, median of ${samples} × ${requests} | least | samples |\n|---|--:|--:|---|`)
  for (const n of names) console.log(`| ${n} | ${results[n].perRequest.toLocaleString('en')} | ${results[n].least.toLocaleString('en')} | ${results[n].samples.map(s => s.toLocaleString('en')).join(', ')} |`)
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
  process.exit(1)
})
