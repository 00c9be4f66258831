// bench/RESULTS.md from the results object of bench/run.mjs.

const median = xs => {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const int = n => Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–'
const fix = (n, d = 2) => Number.isFinite(n) ? n.toFixed(d) : '–'
const x = n => Number.isFinite(n) ? `${n.toFixed(2)}×` : '–'
const pct = n => Number.isFinite(n) ? `${(100 * n).toFixed(1)}%` : '–'
const verdict = ok => ok === null ? 'not measured' : ok ? '**met**' : '**missed**'

/** Median over rounds of a/b, pairing the rounds of two targets (they ran back to back). */
function pairedRatio (a, b) {
  if (!a || !b) return NaN
  const n = Math.min(a.rounds.length, b.rounds.length)
  const ratios = []
  for (let i = 0; i < n; i++) ratios.push(a.rounds[i].rps / b.rounds[i].rps)
  return median(ratios)
}

export function report (result) {
  const { opts, info } = result
  const by = Object.fromEntries(result.targets.map(t => [t.key, t]))
  const base = by['http-proxy']
  const ceiling = by['node-undici']
  const s2 = by.strangler
  const s10k = by['strangler-10k']
  const w2 = by['strangler-w2']
  const old = by['strangler-baseline']
  const L = []
  const p = (...lines) => L.push(...lines)

  p('# strangler-proxy: benchmark results', '')
  if (opts.quick) p('> **Quick mode**: short rounds, a smoke test of the harness. Do not quote these figures.', '')
  p(`Run ${result.started.slice(0, 16).replace('T', ' ')} UTC, ${result.minutes.toFixed(1)} min, with:`, '')
  p('```sh', `node bench/run.mjs${opts.argv.length ? ` ${opts.argv.join(' ')}` : ''}`, '```', '')
  p(`Commit ${info.commit}${info.srcChanges ? ` with ${info.srcChanges} uncommitted change(s) under src/` : ''}; dist/ ${opts.build ? 'rebuilt by the run' : 'as found (--no-build)'}.`, '')
  p('| machine | |', '|---|---|')
  p(`| CPUs (nproc) | ${info.nproc} |`, `| CPU | ${info.cpu} |`, `| memory | ${info.memGiB} GiB |`, `| kernel | ${info.kernel} |`)
  p(`| Node | ${info.node} |`, `| nginx | ${info.nginx} |`, `| haproxy | ${info.haproxy} |`, `| wrk | ${info.wrk} |`, '')
  p(`**Everything shares these ${info.nproc} cores**: wrk (or the latency generator), the upstream (${result.upstream.kind}, a ${result.upstream.body}-byte body) and the proxy under test. ` +
    'Absolute figures are therefore lower than on separate machines, and a proxy that needs less CPU per request also leaves more CPU to wrk and the upstream. Compare rows of one run, not runs.', '')

  p('## Throughput, latency at a fixed rate, memory', '')
  p(`Throughput: \`wrk -t1 -c${opts.connections}\`, ${opts.rounds} rounds × ${opts.duration} s per target after ${opts.warmup} s of warm-up, targets taken in turn within each round (the order rotates every round); the median round is shown, with the slowest and fastest. ` +
    'CPU/req is the CPU time (user + system) the target\'s processes used during the rounds divided by the requests served. ' +
    `A round during which processes outside the benchmark used more than ${opts.noisyCores} cores is run again, up to ${opts.retries} time(s) and ${opts.retryBudget} s of re-runs in all, and the quietest attempt is kept.`, '')
  p(`Latency: an open-loop generator (\`bench/lib/loadgen.mjs\`, Node + undici, separate process) sends ${int(opts.rate)} requests/s on a fixed schedule, whether or not earlier requests have answered, ${opts.latencyRounds} × ${opts.latencyDuration} s per target, taken in turn; latency runs from handing the request to the generator's connection pool to the last byte of the response, so time spent queued behind a stalled proxy counts. ` +
    'It includes the generator\'s own event-loop time (roughly 0.1–0.3 ms): compare rows, not against a wire-level tool. ' +
    '"p99 from schedule" counts from the time each request was due instead (as wrk2 does): it also charges the generator\'s own lateness, which on a busy machine is not the proxy\'s.', '')
  p('Peak RSS: `VmHWM` of the target\'s processes at the end of its throughput and latency rounds (startup, config compilation and load included; the overload runs, later, have their own column); RSS after load: their `VmRSS` at that moment. MB are 10⁶ bytes.', '')
  p('| target | req/s (median) | slowest – fastest round | vs http-proxy | CPU µs/req | p50 ms | p99 ms | p99.9 ms | p99 from schedule ms | peak RSS MB | RSS after load MB | errors |')
  p('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|')
  for (const t of result.targets) {
    const rps = t.rounds.map(r => r.rps)
    const errors = t.rounds.reduce((a, r) => a + r.errors, 0) + (t.latency?.errors ?? 0)
    p(`| ${t.label} | ${int(t.rps)} | ${int(Math.min(...rps))} – ${int(Math.max(...rps))} | ${t.key === 'http-proxy' ? '1.00×' : x(t.rps / base?.rps)} | ${fix(t.cpuUsPerReq, 1)} | ${fix(t.latency?.p50Ms)} | ${fix(t.latency?.p99Ms)} | ${fix(t.latency?.p999Ms)} | ${fix(t.latency?.p99FromScheduleMs)} | ${fix(t.rssMB, 0)} | ${fix(t.rssNowMB, 0)} | ${errors} |`)
  }
  p('')
  const notes = result.targets.filter(t => t.note).map(t => `- ${t.label}: ${t.note}.`)
  for (const s of result.skipped) notes.push(`- **Skipped** ${s.label}: ${s.why}.`)
  const other = Math.max(...result.targets.flatMap(t => t.rounds.map(r => r.otherCores)))
  const noisy = result.targets.flatMap(t => t.rounds.filter(r => r.otherCores > opts.noisyCores)).length
  const latencyOther = Math.max(...result.targets.flatMap(t => (t.latencyRuns ?? []).map(r => r.otherCores ?? 0)))
  notes.push(`- Other processes on the machine (not the target, the upstream, wrk or the harness) used ${fix(result.idleLoad)} cores before the run, up to ${fix(other)} cores during a kept throughput round and up to ${fix(latencyOther)} during a latency run; ${result.reruns} noisy round(s) were run again and ${noisy} of the ${result.targets.reduce((a, t) => a + t.rounds.length, 0)} kept rounds are still noisy (marked * in "Every round").${noisy > 0 ? ' **The machine was not quiet: those figures are depressed and noisier than they should be.**' : ''}`)
  const lag = Math.max(...result.targets.map(t => t.latency?.maxScheduleLagMs ?? 0))
  notes.push(`- The latency generator fell at most ${fix(lag)} ms behind its schedule.`)
  if (s2?.sides) notes.push(`- strangler-proxy's own \`strangler_requests_total\` after its runs (2 contexts): ${Object.entries(s2.sides).map(([k, v]) => `${k}: ${int(v)}`).join(', ')}: both sides served, the split and the metrics were on.`)
  p(...notes, '')

  p('## The targets of issues 5 and 16', '')
  const r2 = pairedRatio(s2, base)
  const rCeil = pairedRatio(s2, ceiling)
  const r10k = pairedRatio(s10k, s2)
  const reloads = result.reload?.runs.filter(r => r.contexts === 10_000) ?? []
  const swapMs = reloads.length ? median(reloads.map(r => r.ms)) : NaN
  const swapMax = reloads.length ? Math.max(...reloads.map(r => r.ms)) : NaN
  const stall = reloads.length ? Math.max(...reloads.map(r => r.stallMs)) : NaN
  const has = v => Number.isFinite(v) ? v : null
  const row = (target, measured, ok) => p(`| ${target} | ${measured} | ${verdict(ok)} |`)
  p('Ratios are the median over rounds of the two targets\' paired rounds (they ran back to back).', '')
  p('| target | measured | |', '|---|---|---|')
  row('throughput, all features, ≥ 1.5× bare @fastify/http-proxy', `${x(r2)} (${int(s2?.rps)} vs ${int(base?.rps)} req/s)`, has(r2) === null ? null : r2 >= 1.5)
  row('throughput within 10% of the Node ceiling (≥ 0.90×)', `${x(rCeil)} (${int(s2?.rps)} vs ${int(ceiling?.rps)} req/s)`, has(rCeil) === null ? null : rCeil >= 0.9)
  row(`p99 at ${int(opts.rate)} req/s ≤ bare @fastify/http-proxy`, `${fix(s2?.latency?.p99Ms)} ms vs ${fix(base?.latency?.p99Ms)} ms`, s2?.latency && base?.latency ? s2.latency.p99Ms <= base.latency.p99Ms : null)
  row('10,000 contexts ≥ 95% of 2-context throughput', `${pct(r10k)} (${int(s10k?.rps)} vs ${int(s2?.rps)} req/s)`, has(r10k) === null ? null : r10k >= 0.95)
  row('compile + swap a 10,000-context config < 300 ms', `median ${int(swapMs)} ms, worst ${int(swapMax)} ms (${reloads.length} reloads)`, has(swapMs) === null ? null : swapMax < 300)
  row('longest event-loop stall during that reload < 100 ms', `${int(stall)} ms`, has(stall) === null ? null : stall < 100)
  const rBase = pairedRatio(s2, old)
  row('Fastify-hosted data plane ≥ 0.95× the node:http data plane it replaced (the --baseline build)', old ? `${x(rBase)} (${int(s2?.rps)} vs ${int(old.rps)} req/s)` : 'no --baseline build given', has(rBase) === null ? null : rBase >= 0.95)
  const p99x = s10k?.latency?.p99Ms / s2?.latency?.p99Ms
  row(`10,000 contexts: p99 at ${int(opts.rate)} req/s within 2× of 2 contexts'`, `${x(p99x)} (${fix(s10k?.latency?.p99Ms)} ms vs ${fix(s2?.latency?.p99Ms)} ms)`, has(p99x) === null ? null : p99x <= 2)
  row('peak RSS under load, 2 contexts, within 15 MB of the Node ceiling\'s', `${fix(s2?.rssMB, 0)} MB vs ${fix(ceiling?.rssMB, 0)} MB`, s2 && ceiling ? s2.rssMB - ceiling.rssMB <= 15 : null)
  row('peak RSS under load, 10,000 contexts < 250 MB', `${fix(s10k?.rssMB, 0)} MB`, s10k ? s10k.rssMB < 250 : null)
  const cpuRow = (label, a, b) => p(`| ${label} (no target; CPU per request is less sensitive than req/s to other load on the machine) | ${x(a?.cpuUsPerReq / b?.cpuUsPerReq)} (${fix(a?.cpuUsPerReq, 1)} vs ${fix(b?.cpuUsPerReq, 1)} µs) | – |`)
  const fwd = by['node-undici-fwd']
  if (fwd) p(`| throughput ÷ the Node ceiling sending the same forwarding headers (no target) | ${x(pairedRatio(s2, fwd))} (${int(s2?.rps)} vs ${int(fwd.rps)} req/s) | – |`)
  cpuRow('CPU per request, strangler-proxy ÷ bare @fastify/http-proxy', s2, base)
  cpuRow('CPU per request, strangler-proxy ÷ the Node ceiling', s2, ceiling)
  if (w2) p(`| throughput, workers: 2 ÷ workers: 1 (no target; ${info.nproc} cores shared with wrk and the upstream) | ${x(pairedRatio(w2, s2))} (${int(w2.rps)} vs ${int(s2?.rps)} req/s) | – |`)
  else p(`| workers: 2 vs 1 (reported, no target) | ${result.skipped.find(s => s.key === 'strangler-w2')?.why ?? 'not run'} | skipped |`)
  p('')

  if (result.overload?.length) {
    const o0 = result.overload[0]
    p(`## Overload: ${int(Number(/-c(\d+)/.exec(o0.command)?.[1]))} connections`, '')
    p(`\`${o0.command.replace(/ -s \S+/, ' -s bench/lib/mix.lua').replace(/http:\/\/\S+/, 'URL')}\` against each target in turn, only the upstream (${result.upstream.kind}, 4,096 worker connections) and wrk besides it from this run, all on the same ${info.nproc} cores. ` +
      'Upstream connections: the most the target\'s processes held open to the upstream at once; accept queues: the most connections waiting, not yet accepted, in the listen queue of the upstream and of the target (`ss` every 200 ms; both listen with a backlog of 511); overflows: the machine\'s `ListenOverflows` during the run (connections that found a listen queue full; the client then retries after 1 s, 3 s, 7 s…); peak RSS: `VmHWM` of the target\'s processes after the run (since they started).', '')
    p('| target | req/s | p50 ms | p99 ms | max ms | errors | > 2 s | > 10 s | upstream connections | accept queue upstream / target | overflows | peak RSS MB | run at (UTC), load average |')
    p('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|')
    for (const o of result.overload) p(`| ${o.label} | ${int(o.rps)} | ${fix(o.p50Ms, 1)} | ${fix(o.p99Ms, 1)} | ${int(o.maxMs)} | ${o.errors + o.timeouts} | ${int(o.over2s)} | ${int(o.over10s)} | ${int(o.upstreamConnections)} | ${int(o.upstreamAcceptQueue)} / ${int(o.proxyAcceptQueue)} | ${int(o.listenOverflows)} | ${fix(o.peakRssMB, 0)} | ${o.at.slice(11, 19)}, ${o.loadavg} |`)
    p('')
  }

  if (result.reload) {
    const r = result.reload
    p('## Hot reload of 10,000 contexts', '')
    p('In the proxy\'s own process (`bench/lib/reload-probe.mjs`: `startStrangler` from dist/, logging to a file as `serve` logs to stdout, file watching off so only the measured reloads happen). ' +
      'Each reload writes the file, waits 1 s, then calls `s.reload(\'admin\')` (or `POST /reload` on the admin API) and times it to the return. ' +
      'The stall is the longest lateness of a 1 ms interval timer from 1 s before to 1 s after the call, so it includes garbage collection of the old table. ' +
      'CPU in that stall is the process CPU time (all threads) used during it: on a busy machine the stall also counts time spent waiting for a core, which this does not.', '')
    p('| reload | runs | median ms | worst ms | longest stall ms | CPU in that stall ms |', '|---|--:|--:|--:|--:|--:|')
    const labels = [...new Set(r.runs.map(x => x.label))]
    for (const label of labels) {
      const runs = r.runs.filter(x => x.label === label)
      const worst = runs.reduce((a, b) => (b.stallMs > a.stallMs ? b : a))
      p(`| ${label} | ${runs.length} | ${int(median(runs.map(x => x.ms)))} | ${int(Math.max(...runs.map(x => x.ms)))} | ${int(worst.stallMs)} | ${worst.stallCpuMs === undefined ? '–' : int(worst.stallCpuMs)} |`)
    }
    p('')
    const parts = r.parts
    p('The CPU cost of each step of a 10,000-context reload, each step alone on the main thread (median of the repetitions; whether the build runs a step on another thread during a real reload does not change its cost, only whether it can stall the proxy):', '')
    p('| step | ms |', '|---|--:|')
    p(`| read, parse and validate the file (js-yaml quick path): \`loadConfigFile\` | ${int(median(parts.loadMs))} |`)
    p(`| compile the routing table: \`compileTable\` | ${int(median(parts.compileMs))} |`)
    p(`| diff old → new for the reload log line: \`diffConfigs\` | ${int(median(parts.diffMs))} |`)
    p(`| serialise that diff (the log line) | ${int(median(parts.logJsonMs))} |`)
    p(`| not in the reload: rendering the weight gauges of 10,000 contexts at a scrape | ${int(median(parts.weightsScrapeMs))} |`, '')
    const prof = r.reloadProfile
    p(`A CPU profile of the main thread (the one that serves requests) during one 2 → 10,000 reload (${int(prof.busyMs)} ms of samples), self time by layer: ${prof.layers.filter(l => l.pctBusy !== null && l.pctBusy >= 1).map(l => `${l.name} ${l.pctBusy.toFixed(0)}%`).join(', ')}. Top functions:`, '')
    p('| self ms | % | function | where |', '|--:|--:|---|---|')
    for (const f of prof.functions.filter(y => y.name !== '(idle)').slice(0, 10)) p(`| ${fix(f.ms, 1)} | ${fix(f.pctBusy, 1)} | \`${f.name}\` | ${f.at} |`)
    p('')
  }

  if (result.profiles) {
    p('## Where the proxy spends its time under load', '')
    const windowed = Object.values(result.profiles).every(v => v.windowed)
    p(`\`node --cpu-prof\` (200 µs sampling) of each process, run on its own (only the upstream and wrk besides it from this run), under \`wrk -t1 -c${opts.connections}\` for ${opts.profileDuration} s after 1 s of warm-up; ${windowed ? 'only the samples taken during those measured seconds are counted (startup and shutdown are left out)' : 'all samples, startup included'}. The profiles are kept in \`bench/out/*.cpuprofile\` (open them in Chrome DevTools or speedscope for flame graphs). Self time, as a share of the process\'s non-idle time, and per request. \`writev\` and \`writeLatin1String\` are the socket writes (the kernel's loopback TCP work is charged to them).`, '')
    const entries = Object.entries(result.profiles)
    p(`| layer | ${entries.map(([k, v]) => `${k} (${int(v.rps)} req/s under the profiler${v.otherCores === undefined ? '' : `; other processes ${fix(v.otherCores)} cores`})`).join(' | ')} |`)
    p(`|---|${entries.map(() => '--:').join('|')}|`)
    const layers = [...new Set(entries.flatMap(([, v]) => v.layers.filter(l => l.pctBusy !== null).slice(0, 12).map(l => l.name)))]
    for (const name of layers) {
      p(`| ${name} | ${entries.map(([, v]) => {
        const l = v.layers.find(y => y.name === name)
        return l ? `${fix(l.pctBusy, 1)}% (${fix((l.ms * 1000) / v.requests, 2)} µs/req)` : '–'
      }).join(' | ')} |`)
    }
    p(`| **busy CPU per request** | ${entries.map(([, v]) => `${fix((v.busyMs * 1000) / v.requests, 2)} µs`).join(' | ')} |`, '')
    for (const [name, v] of entries) {
      p(`Top self-time functions, ${name}:`, '')
      p('| self % | µs/req | function | where |', '|--:|--:|---|---|')
      for (const f of v.functions.filter(y => y.name !== '(idle)').slice(0, 20)) p(`| ${fix(f.pctBusy, 1)} | ${fix((f.ms * 1000) / v.requests, 2)} | \`${f.name}\` | ${f.at} |`)
      p('')
    }
  }

  p('## Every round', '')
  const sys = result.targets.some(t => Number.isFinite(t.readsPerReq))
  if (sys) p('Syscalls/req: read and write system calls of the target\'s processes per request served (`syscr`, `syscw` in /proc/PID/io, which count read, readv, write and writev, what libuv uses on sockets; nginx and haproxy mostly use recv/send, which these counters do not see). 2 + 2 is the floor for a proxy that batches nothing: one read and one write on each side.', '')
  p(`Cores: CPU used by the target\'s processes per second of the round; other: CPU used meanwhile by processes outside the benchmark; both medians over rounds. * : a round kept although other processes used more than ${opts.noisyCores} cores.`, '')
  p(`| target | ${Array.from({ length: opts.rounds }, (_, i) => `round ${i + 1} req/s`).join(' | ')} | wrk p50 / p99 ms at saturation |${sys ? ' syscalls/req read + write |' : ''} cores | other | other during latency runs |`)
  p(`|---|${Array.from({ length: opts.rounds }, () => '--:').join('|')}|--:|${sys ? '--:|' : ''}--:|--:|--:|`)
  for (const t of result.targets) {
    p(`| ${t.key} | ${t.rounds.map(r => `${int(r.rps)}${r.otherCores > opts.noisyCores ? '*' : ''}`).join(' | ')} | ${fix(median(t.rounds.map(r => r.p50Us)) / 1000)} / ${fix(median(t.rounds.map(r => r.p99Us)) / 1000)} |${sys ? ` ${fix(t.readsPerReq)} + ${fix(t.writesPerReq)} |` : ''} ${fix(t.cores)} | ${fix(t.otherCores)} | ${(t.latencyRuns ?? []).map(r => fix(r.otherCores)).join(', ')} |`)
  }
  p('', `Raw data of this run: \`bench/out/${opts.quick ? 'results-quick.json' : 'results.json'}\` (not committed).`, '')
  return L.join('\n')
}
