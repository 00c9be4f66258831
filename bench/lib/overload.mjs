// The overload row of bench/run.mjs: far more clients than the machine can
// serve at once (wrk -t2 -c1000 --latency, 10 s), and what that does to the
// tail. While wrk runs, `ss` is read every 200 ms for the upstream's side of
// it: how many connections the proxy holds to the upstream, and how many
// connections wait in the accept queues (Recv-Q of the listening sockets) of
// the upstream and of the proxy itself.
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { run, sleep } from './procs.mjs'

/**
 * Connections the target's processes hold to the upstream's `ports`, and the
 * longest accept queue (Recv-Q of a listening socket) of the upstream and of
 * the target's own listener.
 */
async function sample (pids, ports, proxyPort) {
  const filter = ports.map(p => `dport = :${p}`).join(' or ')
  const [est, upstream, proxy] = await Promise.all([
    run('ss', ['-Htnp', 'state', 'established', `( ${filter} )`]),
    run('ss', ['-Hltn', `( ${ports.map(p => `sport = :${p}`).join(' or ')} )`]),
    run('ss', ['-Hltn', `( sport = :${proxyPort} )`])
  ])
  const owned = est.out.split('\n').filter(l => [...l.matchAll(/pid=(\d+)/g)].some(m => pids.has(Number(m[1])))).length
  const queue = out => Math.max(0, ...out.split('\n').filter(Boolean).map(l => Number(l.trim().split(/\s+/)[1])))
  return { connections: owned, upstreamQueue: queue(upstream.out), proxyQueue: queue(proxy.out) }
}

function tcpExt (name) {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n')
  for (let i = 0; i < lines.length; i += 2) {
    if (!lines[i].startsWith('TcpExt:')) continue
    const keys = lines[i].split(' ')
    const values = lines[i + 1].split(' ')
    return Number(values[keys.indexOf(name)])
  }
  return NaN
}

/**
 * One overload run against `url` (served by the processes `pids`). Returns
 * wrk's p50, p99 and max latency and errors, the answers slower than 2 s and
 * 10 s, the most connections the target held to the upstream, the longest
 * accept queues seen, and the machine's listen-queue overflows meanwhile.
 */
export async function overload ({ url, pids, script, mix, upstreamPorts, seconds, connections, pin = false }) {
  // Pinned: the target on core 0 and wrk alone on core 1, so that wrk's own
  // threads, starved of CPU, do not add their waiting to every latency.
  if (pin) for (const pid of pids) await run('taskset', ['-a', '-p', '-c', '0', String(pid)])
  const overflows0 = tcpExt('ListenOverflows')
  let sampling = true
  const side = { connections: 0, upstreamQueue: 0, proxyQueue: 0 }
  const proxyPort = Number(new URL(url).port)
  const sampler = (async () => {
    while (sampling) {
      const s = await sample(pids, upstreamPorts, proxyPort)
      for (const k of Object.keys(side)) side[k] = Math.max(side[k], s[k])
      await sleep(200)
    }
  })()
  // wrk's default timeout (2 s) leaves slower answers out of its latencies: the tail is what this row is about.
  const args = ['-t2', `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '60s', '-s', script, url, '--', mix, '10000']
  const r = pin ? await run('taskset', ['-c', '1', 'wrk', ...args]) : await run('wrk', args)
  sampling = false
  await sampler
  if (pin) for (const pid of pids) await run('taskset', ['-a', '-p', '-c', `0-${availableParallelism() - 1}`, String(pid)])
  const line = r.out.split('\n').find(l => l.startsWith('BENCH_JSON '))
  if (r.code !== 0 || !line) throw new Error(`wrk ${args.join(' ')} failed (${r.code}): ${r.out}${r.err}`)
  const w = JSON.parse(line.slice('BENCH_JSON '.length))
  return {
    command: `${pin ? 'taskset -c 1 ' : ''}wrk ${args.join(' ')}`,
    pinned: pin,
    at: new Date().toISOString(),
    loadavg: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    rps: w.requests / (w.durationUs / 1e6),
    requests: w.requests,
    p50Ms: w.p50Us / 1000,
    p99Ms: w.p99Us / 1000,
    maxMs: w.maxUs / 1000,
    errors: w.connectErrors + w.readErrors + w.writeErrors + w.statusErrors,
    timeouts: w.timeouts,
    over2s: w.over2s,
    over10s: w.over10s,
    upstreamConnections: side.connections,
    upstreamAcceptQueue: side.upstreamQueue,
    proxyAcceptQueue: side.proxyQueue,
    listenOverflows: tcpExt('ListenOverflows') - overflows0
  }
}
