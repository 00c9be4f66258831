// What does strangler-proxy cost compared with what one would use otherwise?
//
//   node bench/run.mjs            full run (about 14 minutes), writes bench/RESULTS.md
//   node bench/run.mjs --quick    a minute or two, writes bench/out/RESULTS-quick.md
//
// One machine, one run: a fast upstream (nginx, else a Node server), then every
// target in its own process, measured round by round in turn with wrk (-t1
// -c50; autocannon is not supported, wrk is required), then latency at a fixed
// rate with an open-loop generator, then a 10,000-context hot reload in the
// proxy's own process, then a CPU profile of strangler-proxy and of the Node
// ceiling under wrk. Every process started here is stopped at the end, also on
// failure or Ctrl-C. Flags (and their environment variables) are in OPTIONS.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, cpSync } from 'node:fs'
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import * as configs from './lib/configs.mjs'
import { overload } from './lib/overload.mjs'
import { summarise } from './lib/cpuprofile.mjs'
import { wrk } from './lib/wrk.mjs'
import { cpuSeconds, freePort, harnessSeconds, killAllNow, machineBusySeconds, syscalls, peakRss, processTree, run, sleep, start, stop, stopAll, waitForLine } from './lib/procs.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BENCH = join(ROOT, 'bench')
const OUT = join(BENCH, 'out')

const OPTIONS = {
  quick: { type: 'boolean', default: false, env: 'BENCH_QUICK', help: 'short rounds: a smoke test, not figures to quote' },
  rounds: { type: 'string', env: 'BENCH_ROUNDS', full: '5', quick: '2', help: 'throughput rounds per target' },
  duration: { type: 'string', env: 'BENCH_DURATION', full: '10', quick: '3', help: 'seconds of wrk per round' },
  warmup: { type: 'string', env: 'BENCH_WARMUP', full: '3', quick: '1', help: 'seconds of wrk per target before the rounds' },
  connections: { type: 'string', env: 'BENCH_CONNECTIONS', full: '50', quick: '50', help: 'wrk connections (one thread)' },
  rate: { type: 'string', env: 'BENCH_RATE', full: '2000', quick: '2000', help: 'requests/s of the fixed-rate latency runs' },
  'latency-rounds': { type: 'string', env: 'BENCH_LATENCY_ROUNDS', full: '2', quick: '1', help: 'fixed-rate rounds per target' },
  'latency-duration': { type: 'string', env: 'BENCH_LATENCY_DURATION', full: '10', quick: '3', help: 'seconds per fixed-rate round' },
  'reload-reps': { type: 'string', env: 'BENCH_RELOAD_REPS', full: '3', quick: '1', help: 'repetitions of each 10,000-context reload' },
  'overload-connections': { type: 'string', env: 'BENCH_OVERLOAD_CONNECTIONS', full: '1000', quick: '1000', help: 'wrk -t2 connections of the overload runs (nginx, the Node ceiling, strangler-proxy)' },
  'overload-duration': { type: 'string', env: 'BENCH_OVERLOAD_DURATION', full: '10', quick: '3', help: 'seconds of each overload run (0: none)' },
  'profile-duration': { type: 'string', env: 'BENCH_PROFILE_DURATION', full: '10', quick: '3', help: 'seconds of wrk under --cpu-prof (0: no profiles)' },
  'noisy-cores': { type: 'string', env: 'BENCH_NOISY_CORES', full: '0.25', quick: '0.25', help: 'a throughput round during which other processes used more cores than this is noisy' },
  retries: { type: 'string', env: 'BENCH_RETRIES', full: '2', quick: '0', help: 'times a noisy round is run again (the quietest attempt is kept)' },
  'retry-budget': { type: 'string', env: 'BENCH_RETRY_BUDGET', full: '90', quick: '0', help: 'seconds the whole run may spend on re-running noisy rounds' },
  'wait-quiet': { type: 'string', env: 'BENCH_WAIT_QUIET', full: '0', quick: '0', help: 'wait up to this many seconds for other processes to use < 0.25 cores before starting' },
  only: { type: 'string', env: 'BENCH_ONLY', help: 'comma-separated parts to run (default: all): direct, nginx, haproxy, node-undici, node-undici-fwd, http-proxy, reply-from, strangler, strangler-baseline, strangler-10k, strangler-w2, overload, reload, profile' },
  baseline: { type: 'string', env: 'BENCH_BASELINE', help: 'a copy of dist/ built from another commit (under the repo, so that it finds node_modules): row strangler-baseline runs it beside strangler' },
  build: { type: 'boolean', default: true, env: 'BENCH_BUILD', help: 'npm run build first (--no-build to skip)' },
  out: { type: 'string', env: 'BENCH_OUT', help: 'results file (default bench/RESULTS.md, bench/out/RESULTS-quick.md with --quick)' },
  help: { type: 'boolean', default: false }
}

function options () {
  const spec = Object.fromEntries(Object.entries(OPTIONS).map(([k, o]) => [k, { type: o.type }]))
  const { values } = parseArgs({ args: process.argv.slice(2), options: spec, strict: true, allowNegative: true })
  if (values.help) {
    console.log('node bench/run.mjs [--quick] [--OPTION VALUE]...')
    for (const [k, o] of Object.entries(OPTIONS)) if (o.help) console.log(`  --${k.padEnd(18)} ${o.env ?? ''}  ${o.help}${o.full ? ` (full ${o.full}, quick ${o.quick})` : ''}`)
    process.exit(0)
  }
  const quick = values.quick ?? process.env.BENCH_QUICK === '1'
  const get = k => values[k] ?? process.env[OPTIONS[k].env] ?? (quick ? OPTIONS[k].quick : OPTIONS[k].full)
  const num = k => {
    const n = Number(get(k))
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${k} must be a number, got ${get(k)}`)
    return n
  }
  const build = values.build ?? process.env.BENCH_BUILD !== '0'
  return {
    quick,
    rounds: num('rounds'),
    duration: num('duration'),
    warmup: num('warmup'),
    connections: num('connections'),
    rate: num('rate'),
    latencyRounds: num('latency-rounds'),
    latencyDuration: num('latency-duration'),
    reloadReps: num('reload-reps'),
    profileDuration: num('profile-duration'),
    overloadConnections: num('overload-connections'),
    overloadDuration: num('overload-duration'),
    waitQuiet: num('wait-quiet'),
    noisyCores: num('noisy-cores'),
    retries: num('retries'),
    retryBudget: num('retry-budget'),
    only: get('only') ? get('only').split(',') : null,
    baseline: get('baseline') ?? null,
    build,
    out: get('out') ?? join(quick ? OUT : BENCH, quick ? 'RESULTS-quick.md' : 'RESULTS.md'),
    argv: process.argv.slice(2)
  }
}

const say = (...args) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...args)
const median = xs => {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const percentile = (sorted, p) => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]

async function which (cmd) {
  return (await run('sh', ['-c', `command -v ${cmd}`])).code === 0
}

async function machine () {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown'
  const version = async (cmd, args) => {
    if (!(await which(cmd))) return 'not installed'
    const r = await run(cmd, args)
    return `${r.out}${r.err}`.split('\n').find(l => l.trim() !== '')?.trim() ?? 'unknown'
  }
  const git = await run('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT })
  const dirty = await run('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT })
  return {
    nproc: (await run('nproc', [])).out.trim(),
    cpu: model,
    memGiB: (totalmem() / 2 ** 30).toFixed(1),
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    node: process.version,
    nginx: await version('nginx', ['-v']),
    haproxy: await version('haproxy', ['-v']),
    wrk: await version('wrk', ['-v']),
    commit: git.out.trim() || 'unknown',
    srcChanges: dirty.out.split('\n').filter(Boolean).length
  }
}

async function httpReady (url, proc, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (proc.exited !== null) throw new Error(`${proc.name} exited (${JSON.stringify(proc.exited)}): ${proc.err.slice(-2000)}`)
    try {
      const res = await fetch(url)
      await res.arrayBuffer()
      return
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${proc.name}: ${url} not answering: ${err.message}\n${proc.err.slice(-2000)}`)
      await sleep(100)
    }
  }
}

/** The fast upstream: nginx serving BODY on two ports (legacy and new), else a Node server. */
async function startUpstream (dir) {
  if (await which('nginx')) {
    const ports = [await freePort(), await freePort()]
    const conf = configs.nginxUpstream(dir, ports)
    const proc = start('upstream (nginx)', 'nginx', ['-p', dir, '-c', conf, '-e', 'stderr', '-g', 'daemon off;'])
    await httpReady(`http://127.0.0.1:${ports[0]}/`, proc)
    await httpReady(`http://127.0.0.1:${ports[1]}/`, proc)
    return { proc, ports, kind: 'nginx, 1 worker' }
  }
  const proc = start('upstream (node)', process.execPath, [join(BENCH, 'servers/upstream.mjs'), configs.BODY])
  const { ports } = await waitForLine(proc, v => Array.isArray(v?.ports))
  return { proc, ports, kind: 'Node http server (nginx not installed)' }
}

async function nodeServer (name, script, upstream, nodeArgs = [], args = []) {
  const proc = start(name, process.execPath, [...nodeArgs, join(BENCH, 'servers', script), upstream, ...args])
  const { port } = await stopOnFailure(proc, waitForLine(proc, v => typeof v?.port === 'number'))
  return { proc, url: `http://127.0.0.1:${port}` }
}

async function stopOnFailure (proc, promise) {
  try {
    return await promise
  } catch (err) {
    await stop(proc)
    throw err
  }
}

async function strangler (name, configFile, nodeArgs = [], timeoutMs = 60_000, dist = join(ROOT, 'dist')) {
  const proc = start(name, process.execPath, [...nodeArgs, join(dist, 'cli.js'), 'serve', '--config', configFile], { cwd: dirname(configFile) })
  const line = await stopOnFailure(proc, waitForLine(proc, v => v?.msg === 'proxy listening' && typeof v.listen === 'string', timeoutMs))
  return { proc, url: `http://${line.listen}`, admin: `http://${line.admin}`, line }
}

/**
 * Every target: key, label, how to start it, which request mix it gets.
 * `start` returns { proc, url, note? } or throws { skip } to leave it out with a note.
 */
function targets (dir, upstream, have, baseline) {
  const up = `http://127.0.0.1:${upstream.ports[0]}`
  return [
    { key: 'direct', label: 'direct to the upstream (ceiling)', mix: 'api', start: async () => ({ proc: upstream.proc, url: up, shared: true, note: `${upstream.kind}; RSS and CPU are the upstream's` }) },
    { key: 'nginx', label: 'nginx proxy_pass, 1 worker', mix: 'api', native: true, start: async () => {
      if (!have.nginx) throw { skip: 'nginx not installed' }
      const port = await freePort()
      const proc = start('nginx proxy', 'nginx', ['-p', dir, '-c', configs.nginxProxy(dir, port, upstream.ports[0]), '-e', 'stderr', '-g', 'daemon off;'])
      await httpReady(`http://127.0.0.1:${port}/`, proc)
      return { proc, url: `http://127.0.0.1:${port}`, note: 'keepalive 64 to the upstream; RSS is master + worker' }
    } },
    { key: 'haproxy', label: 'haproxy, 1 thread', mix: 'api', native: true, start: async () => {
      if (!have.haproxy) throw { skip: 'haproxy not installed' }
      const port = await freePort()
      const proc = start('haproxy', 'haproxy', ['-db', '-f', configs.haproxy(dir, port, upstream.ports[0])])
      await httpReady(`http://127.0.0.1:${port}/`, proc)
      return { proc, url: `http://127.0.0.1:${port}`, note: 'http-reuse always' }
    } },
    { key: 'node-undici', label: 'bare node:http + undici Pool.dispatch (Node ceiling)', mix: 'api', start: () => nodeServer('node-undici', 'node-undici.mjs', up) },
    { key: 'node-undici-fwd', label: 'the Node ceiling sending strangler-proxy\'s forwarding headers', mix: 'api', start: async () => ({ ...await nodeServer('node-undici-fwd', 'node-undici.mjs', up, [], ['forwarding']), note: 'X-Forwarded-For, -Host, -Proto and a fresh X-Request-Id on every upstream request, as strangler-proxy sends them' }) },
    { key: 'http-proxy', label: 'bare @fastify/http-proxy (defaults)', mix: 'api', start: () => nodeServer('fastify-http-proxy', 'fastify-http-proxy.mjs', up) },
    { key: 'reply-from', label: 'bare @fastify/reply-from (defaults)', mix: 'api', start: () => nodeServer('fastify-reply-from', 'fastify-reply-from.mjs', up) },
    { key: 'strangler', label: 'strangler-proxy, 2 contexts, all features', mix: 'api', strangler: true, start: () => strangler('strangler', configs.strangler2(dir, 'strangler-2.yaml', upstream.ports)) },
    { key: 'strangler-baseline', label: 'strangler-proxy, 2 contexts, all features: the --baseline build', mix: 'api', strangler: true, start: async () => {
      if (baseline === null) throw { skip: 'no --baseline build given' }
      if (!existsSync(join(baseline, 'cli.js'))) throw { skip: `${baseline} holds no cli.js` }
      return { ...await strangler('strangler-baseline', configs.strangler2(dir, 'strangler-baseline.yaml', upstream.ports), [], 60_000, baseline), note: relative(ROOT, baseline) }
    } },
    { key: 'strangler-10k', label: 'strangler-proxy, 10,000 contexts', mix: 'many', strangler: true, start: async () => {
      const t0 = performance.now()
      const s = await strangler('strangler-10k', configs.stranglerMany(dir, 'strangler-10k.yaml', upstream.ports, 10_000))
      return { ...s, note: `started in ${((performance.now() - t0) / 1000).toFixed(1)} s; rewrite on 1 context in 4 (1 MiB file limit)` }
    } },
    { key: 'strangler-w2', label: 'strangler-proxy, 2 contexts, server.workers: 2', mix: 'api', strangler: true, start: async () => {
      const file = configs.strangler2(dir, 'strangler-w2.yaml', upstream.ports, { workers: 2 })
      const check = await run(process.execPath, [join(ROOT, 'dist/cli.js'), 'check', file])
      if (check.code !== 0) throw { skip: `server.workers is not accepted by this build: ${(check.out + check.err).trim().split('\n')[0]}` }
      let s
      try {
        s = await strangler('strangler-w2', file, [], 20_000)
      } catch (err) {
        throw { skip: `server.workers: 2 is accepted by \`check\` but \`serve\` did not start: ${err.message.split('\n').filter(Boolean).slice(0, 3).join(' ').slice(0, 300)}` }
      }
      await sleep(1500)
      const nodes = processTree(s.proc.pid).length
      if (nodes < 3) {
        await stop(s.proc)
        throw { skip: `server.workers: 2 is accepted by the config but the proxy runs ${nodes} process(es), not a primary and 2 workers` }
      }
      return { ...s, note: `${nodes} processes; RSS is their sum` }
    } }
  ]
}

/** One wrk run against t, with the CPU the target used and the CPU other processes used meanwhile. */
async function throughputRound (t, upstream, opts) {
  const ours = () => cpuSeconds(t.proc.pid) + (t.shared ? 0 : cpuSeconds(upstream.proc.pid)) + harnessSeconds()
  const [cpu0, ours0, machine0, at0, sys0] = [cpuSeconds(t.proc.pid), ours(), machineBusySeconds(), performance.now(), syscalls(t.proc.pid)]
  const w = await wrk(t.url, opts.duration, opts.connections, t.mix)
  const seconds = (performance.now() - at0) / 1000
  const cpu = cpuSeconds(t.proc.pid) - cpu0
  const sys1 = syscalls(t.proc.pid)
  // CPU that neither the target, the upstream, wrk nor this harness used: other work on the machine.
  const otherCores = Math.max(0, (machineBusySeconds() - machine0) - (ours() - ours0)) / seconds
  return {
    rps: w.rps, errors: w.errors, p50Us: w.p50Us, p99Us: w.p99Us, cpuUsPerReq: (cpu * 1e6) / w.requests, cores: cpu / seconds, otherCores,
    readsPerReq: (sys1.reads - sys0.reads) / w.requests, writesPerReq: (sys1.writes - sys0.writes) / w.requests
  }
}

async function loadgen (dir, url, rate, seconds, mix) {
  const file = join(dir, 'loadgen.json')
  rmSync(file, { force: true })
  const proc = start('loadgen', process.execPath, [join(BENCH, 'lib/loadgen.mjs'), file, url, String(rate), String(seconds), mix, '10000'])
  const exit = await proc.done
  if (exit.code !== 0 || !existsSync(file)) throw new Error(`loadgen ${url} failed: ${JSON.stringify(exit)} ${proc.err}`)
  return JSON.parse(readFileSync(file, 'utf8'))
}

/** Sanity: one request of the target's mix answers 200 with the upstream's body. */
async function check (t) {
  const path = t.mix === 'many' ? '/c/4242/items/1' : '/api/orders/1'
  const res = await fetch(`${t.url}${path}`, { headers: { 'x-user-id': 'user-1' } })
  const body = await res.text()
  if (res.status !== 200 || body !== configs.BODY) throw new Error(`${t.key}: GET ${path} answered ${res.status} ${JSON.stringify(body.slice(0, 200))}`)
}

/** Requests by side from the strangler's /metrics: proof that the split and the metrics were on. */
async function sides (admin) {
  const text = await (await fetch(`${admin}/metrics`)).text()
  const out = {}
  for (const m of text.matchAll(/^strangler_requests_total\{([^}]*)\} (\d+)/gm)) {
    const side = /side="([^"]+)"/.exec(m[1])[1]
    const code = /code="([^"]+)"/.exec(m[1])[1]
    out[`${side} ${code}`] = (out[`${side} ${code}`] ?? 0) + Number(m[2])
  }
  return out
}

async function profile (name, startTarget, seconds, connections, mix, dir, upstreamPid) {
  const profDir = join(dir, `prof-${name}`)
  mkdirSync(profDir, { recursive: true })
  const t = await startTarget(['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=200'])
  await wrk(t.url, 1, connections, mix)
  const fromUs = Number(process.hrtime.bigint() / 1000n)
  const [m0, h0] = [machineBusySeconds(), harnessSeconds() + cpuSeconds(t.proc.pid) + cpuSeconds(upstreamPid)]
  const w = await wrk(t.url, seconds, connections, mix)
  const toUs = Number(process.hrtime.bigint() / 1000n)
  const otherCores = Math.max(0, machineBusySeconds() - m0 - (harnessSeconds() + cpuSeconds(t.proc.pid) + cpuSeconds(upstreamPid) - h0)) / ((toUs - fromUs) / 1e6)
  await stop(t.proc, 15_000)
  const file = readdirSync(profDir).find(f => f.endsWith('.cpuprofile'))
  if (!file) throw new Error(`${name}: no .cpuprofile written`)
  mkdirSync(OUT, { recursive: true })
  const kept = join(OUT, `${name}.cpuprofile`)
  cpSync(join(profDir, file), kept)
  const data = JSON.parse(readFileSync(kept, 'utf8'))
  // The window only applies if the profile's clock is ours (it is on Linux: CLOCK_MONOTONIC).
  const window = data.startTime < fromUs && data.endTime > toUs ? { fromUs, toUs } : null
  return { ...summarise(data, 25, window), windowed: window !== null, otherCores, rps: w.rps, requests: w.requests, file: relative(ROOT, kept) }
}

async function main () {
  const opts = options()
  const t0 = Date.now()
  if (!(await which('wrk'))) throw new Error('wrk is required: apt-get install -y wrk (autocannon is not supported by this harness)')
  if (opts.build) {
    say('npm run build')
    const b = await run('npm', ['run', 'build'], { cwd: ROOT })
    if (b.code !== 0) {
      if (!existsSync(join(ROOT, 'dist/cli.js'))) throw new Error(`npm run build failed:\n${b.out}${b.err}`)
      say(`warning: npm run build exited ${b.code}; benchmarking the dist/ it emitted\n${b.out.slice(-1500)}`)
    }
  }
  const info = await machine()
  const have = { nginx: await which('nginx'), haproxy: await which('haproxy') }
  say(`${info.nproc} CPUs (${info.cpu}), node ${info.node}, ${opts.quick ? 'QUICK' : 'full'} mode: ${opts.rounds} × ${opts.duration} s rounds`)
  const otherLoad = async () => {
    const [m0, h0] = [machineBusySeconds(), harnessSeconds()]
    await sleep(2000)
    return Math.max(0, machineBusySeconds() - m0 - (harnessSeconds() - h0)) / 2
  }
  let idleLoad = await otherLoad()
  for (const until = Date.now() + opts.waitQuiet * 1000; idleLoad >= 0.25 && Date.now() < until; idleLoad = await otherLoad()) {
    say(`waiting for a quieter machine: other processes use ${idleLoad.toFixed(2)} cores`)
    await sleep(3000)
  }
  say(`before starting: other processes use ${idleLoad.toFixed(2)} cores; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`)
  dir = mkdtempSync(join(tmpdir(), 'strangler-bench-'))
  const result = { opts, info, started: new Date().toISOString(), targets: [], skipped: [], idleLoad, reruns: 0 }
  try {
    const upstream = await startUpstream(dir)
    result.upstream = { kind: upstream.kind, body: Buffer.byteLength(configs.BODY) }
    say(`upstream: ${upstream.kind} on ${upstream.ports.join(', ')}`)

    const live = []
    for (const def of targets(dir, upstream, have, opts.baseline === null ? null : resolve(opts.baseline))) {
      if (opts.only && !opts.only.includes(def.key)) continue
      try {
        const t = { ...def, ...(await def.start()), rounds: [], latency: null }
        await check(t)
        live.push(t)
        say(`started ${t.key} at ${t.url}`)
      } catch (err) {
        if (err?.skip) {
          result.skipped.push({ key: def.key, label: def.label, why: err.skip })
          say(`skipped ${def.key}: ${err.skip}`)
        } else throw err
      }
    }

    if (opts.warmup > 0) {
      say(`warm-up: ${opts.warmup} s each`)
      for (const t of live) await wrk(t.url, opts.warmup, opts.connections, t.mix)
    }

    let retrySeconds = 0
    for (let r = 0; r < opts.rounds; r++) {
      // Rotate the order each round: no target always runs right after the same neighbour.
      const order = live.map((_, i) => live[(i + r) % live.length])
      for (const t of order) {
        let kept = null
        for (let attempt = 0; ; attempt++) {
          const round = await throughputRound(t, upstream, opts)
          round.round = r
          round.attempts = attempt + 1
          if (kept === null || round.otherCores < kept.otherCores) kept = round
          const noisy = round.otherCores > opts.noisyCores
          say(`round ${r + 1}/${opts.rounds} ${t.key.padEnd(14)} ${Math.round(round.rps).toString().padStart(7)} req/s  ${round.cores.toFixed(2)} cores${round.otherCores >= 0.05 ? `  (other processes: ${round.otherCores.toFixed(2)} cores${noisy ? ', noisy' : ''})` : ''}${round.errors ? `  ${round.errors} errors` : ''}`)
          if (!noisy || attempt >= opts.retries || retrySeconds + opts.duration > opts.retryBudget) break
          retrySeconds += opts.duration
          result.reruns++
        }
        t.rounds.push(kept)
      }
    }

    for (let r = 0; r < opts.latencyRounds; r++) {
      const order = live.map((_, i) => live[(i + r) % live.length])
      for (const t of order) {
        const [m0, h0, at0] = [machineBusySeconds(), harnessSeconds() + cpuSeconds(t.proc.pid) + (t.shared ? 0 : cpuSeconds(upstream.proc.pid)), performance.now()]
        const l = await loadgen(dir, t.url, opts.rate, opts.latencyDuration, t.mix)
        const otherCores = Math.max(0, machineBusySeconds() - m0 - (harnessSeconds() + cpuSeconds(t.proc.pid) + (t.shared ? 0 : cpuSeconds(upstream.proc.pid)) - h0)) / ((performance.now() - at0) / 1000)
        t.latencyRuns = [...(t.latencyRuns ?? []), { errors: l.errors + l.statusErrors, achievedRate: l.achievedRate, maxScheduleLagMs: l.maxScheduleLagMs, otherCores }]
        t.latencySamples = [...(t.latencySamples ?? []), ...l.latenciesUs]
        t.scheduleSamples = [...(t.scheduleSamples ?? []), ...l.fromScheduleUs]
        say(`latency ${r + 1}/${opts.latencyRounds} ${t.key.padEnd(14)} p99 ${(percentile([...l.latenciesUs].sort((a, b) => a - b), 99) / 1000).toFixed(2)} ms`)
      }
    }

    // Peak RSS under load: before the overload runs, whose 1,000 connections are reported on their own.
    const mib = (rss, key = 'mib') => rss.reduce((a, p) => a + p[key], 0) * 1.048576
    for (const t of live) {
      t.rss = peakRss(t.proc.pid)
      t.rssMB = mib(t.rss)
      t.rssNowMB = mib(t.rss, 'nowMib')
    }

    if (opts.overloadDuration > 0 && (!opts.only || opts.only.includes('overload'))) {
      result.overload = []
      // Each target twice: as the issue ran it, then with wrk on a core of its own.
      for (const pin of availableParallelism() > 1 ? [false, true] : [false]) for (const t of live.filter(x => ['nginx', 'node-undici', 'strangler'].includes(x.key))) {
        say(`overload: ${t.key}, wrk -t2 -c${opts.overloadConnections} for ${opts.overloadDuration} s${pin ? ', target on core 0, wrk on core 1' : ''}`)
        const o = await overload({ url: t.url, pids: new Set(processTree(t.proc.pid).map(x => x.pid ?? x)), script: join(BENCH, 'lib/mix.lua'), mix: t.mix, upstreamPorts: upstream.ports, seconds: opts.overloadDuration, connections: opts.overloadConnections, pin })
        result.overload.push({ key: t.key, label: pin ? `${t.label}, pinned` : t.label, ...o, peakRssMB: mib(peakRss(t.proc.pid)) })
        say(`overload: ${t.key}${pin ? ' pinned' : ''} p50 ${o.p50Ms.toFixed(1)} ms, p99 ${o.p99Ms.toFixed(1)} ms, max ${o.maxMs.toFixed(0)} ms, ${o.over10s} over 10 s, ${o.upstreamConnections} upstream connections, accept queues up to ${o.upstreamAcceptQueue} (upstream) and ${o.proxyAcceptQueue} (proxy), ${o.listenOverflows} listen overflows`)
      }
    }

    for (const t of live) {
      const sorted = Float64Array.from(t.latencySamples ?? []).sort()
      t.latency = sorted.length === 0
        ? null
        : {
            samples: sorted.length,
            p50Ms: percentile(sorted, 50) / 1000,
            p90Ms: percentile(sorted, 90) / 1000,
            p99Ms: percentile(sorted, 99) / 1000,
            p999Ms: percentile(sorted, 99.9) / 1000,
            maxMs: sorted[sorted.length - 1] / 1000,
            errors: t.latencyRuns.reduce((a, x) => a + x.errors, 0),
            maxScheduleLagMs: Math.max(...t.latencyRuns.map(x => x.maxScheduleLagMs)),
            p99FromScheduleMs: percentile(Float64Array.from(t.scheduleSamples).sort(), 99) / 1000
          }
      delete t.latencySamples
      delete t.scheduleSamples
      if (t.strangler && t.admin) t.sides = await sides(t.admin).catch(err => ({ error: err.message }))
      t.rps = median(t.rounds.map(x => x.rps))
      result.targets.push({
        key: t.key, label: t.label, url: t.url, note: t.note, mix: t.mix, rps: t.rps,
        rounds: t.rounds, latency: t.latency, latencyRuns: t.latencyRuns, rssMB: t.rssMB, rssNowMB: t.rssNowMB, rss: t.rss, sides: t.sides,
        cpuUsPerReq: median(t.rounds.map(x => x.cpuUsPerReq)),
        cores: median(t.rounds.map(x => x.cores)),
        otherCores: median(t.rounds.map(x => x.otherCores)),
        readsPerReq: median(t.rounds.map(x => x.readsPerReq)),
        writesPerReq: median(t.rounds.map(x => x.writesPerReq))
      })
    }
    for (const t of live) if (!t.shared) await stop(t.proc)

    if (opts.reloadReps > 0 && (!opts.only || opts.only.includes('reload'))) {
      say(`reload: 10,000 contexts, ${opts.reloadReps} repetition(s)`)
      const rdir = join(dir, 'reload')
      mkdirSync(rdir)
      const probe = start('reload-probe', process.execPath, [join(BENCH, 'lib/reload-probe.mjs'), rdir, String(upstream.ports[0]), String(upstream.ports[1]), String(opts.reloadReps)])
      const exit = await probe.done
      const line = probe.out.split('\n').find(l => l.startsWith('{'))
      if (exit.code !== 0 || !line) throw new Error(`reload probe failed: ${JSON.stringify(exit)}\n${probe.err}`)
      result.reload = JSON.parse(line)
    }

    if (opts.profileDuration > 0 && (!opts.only || opts.only.includes('profile'))) {
      say(`CPU profiles: ${opts.profileDuration} s of wrk each`)
      const up = `http://127.0.0.1:${upstream.ports[0]}`
      result.profiles = {
        strangler: await profile('strangler', a => strangler('strangler (profiled)', configs.strangler2(dir, 'strangler-prof.yaml', upstream.ports), a), opts.profileDuration, opts.connections, 'api', dir, upstream.proc.pid),
        'node-undici': await profile('node-undici', a => nodeServer('node-undici (profiled)', 'node-undici.mjs', up, a), opts.profileDuration, opts.connections, 'api', dir, upstream.proc.pid)
      }
    }
    await stop(upstream.proc)
  } finally {
    await cleanup()
  }
  result.minutes = (Date.now() - t0) / 60_000
  mkdirSync(OUT, { recursive: true })
  writeFileSync(join(OUT, opts.quick ? 'results-quick.json' : 'results.json'), JSON.stringify(result, null, 2))
  const { report } = await import('./lib/report.mjs')
  mkdirSync(dirname(opts.out), { recursive: true })
  writeFileSync(opts.out, report(result))
  say(`wrote ${relative(ROOT, opts.out)} in ${result.minutes.toFixed(1)} min`)
  console.log(`\n${report(result, { terminal: true })}`)
}

let dir = null
async function cleanup () {
  await stopAll()
  if (dir !== null) rmSync(dir, { recursive: true, force: true })
  dir = null
}

process.on('exit', () => {
  killAllNow()
  if (dir !== null) rmSync(dir, { recursive: true, force: true })
})
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    say(`${signal}: stopping every process started`)
    cleanup().finally(() => process.exit(130))
  })
}
main().catch(async err => {
  console.error(err?.stack ?? err)
  await cleanup()
  process.exit(1)
})
