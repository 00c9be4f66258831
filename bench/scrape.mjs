// What a Prometheus scrape of a 10,000-context proxy costs the requests it
// serves. `strangler serve` runs in its own process (with --workers N, N
// worker processes); every context first gets traffic on both sides, so that
// every series exists. Then, for each scrape, four clients send requests one
// after another while GET /metrics is read in full, and the slowest of those
// requests is noted, next to the median request when no scrape runs.
//   npm run build && node bench/scrape.mjs [--scrapes 5] [--workers 1] [--dist DIR]
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { BODY, stranglerMany } from './lib/configs.mjs'
import { start, stop, waitForLine } from './lib/procs.mjs'

const { values: opts } = parseArgs({
  options: {
    scrapes: { type: 'string', default: '5' },
    workers: { type: 'string', default: '1' },
    dist: { type: 'string', default: fileURLToPath(new URL('../dist', import.meta.url)) }
  }
})
const COUNT = 10_000
const workers = Number(opts.workers)
const dir = mkdtempSync(join(os.tmpdir(), 'strangler-scrape-'))
const upstream = start('upstream', process.execPath, [fileURLToPath(new URL('./servers/upstream.mjs', import.meta.url)), BODY])
const { ports } = await waitForLine(upstream, v => Array.isArray(v?.ports))
const file = stranglerMany(dir, 'scrape.yaml', ports, COUNT)
if (workers > 1) writeFileSync(file, readFileSync(file, 'utf8').replace('server:\n', `server:\n  workers: ${workers}\n`))
const proxy = start('strangler', process.execPath, [join(resolve(opts.dist), 'cli.js'), 'serve', '--config', file, '--no-watch'], { cwd: dir })
const ready = await waitForLine(proxy, v => v?.msg === 'proxy listening', 60_000)

// Four users per context: with weight 50 and sticky users, both sides of nearly every context.
const filler = new Pool(`http://${ready.listen}`, { connections: 20 })
const sent = []
for (let c = 0; c < COUNT; c++) {
  for (let u = 0; u < 4; u++) sent.push(filler.request({ path: `/c/${c}/x`, method: 'GET', headers: { 'x-user-id': `user-${u}` } }).then(r => r.body.dump()))
}
await Promise.all(sent)
await filler.close()

const probe = new Pool(`http://${ready.listen}`, { connections: 4 })
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** Requests from four clients, one after another each, while `during` runs: their latencies. */
async function probed (during) {
  let done = false
  let n = 0
  const latencies = []
  const clients = Array.from({ length: 4 }, async () => {
    while (!done) {
      const t = performance.now()
      const res = await probe.request({ path: `/c/${n++ % COUNT}/probe`, method: 'GET' })
      await res.body.dump()
      latencies.push(performance.now() - t)
    }
  })
  const result = await during()
  done = true
  await Promise.all(clients)
  return { result, latencies: latencies.sort((a, b) => a - b) }
}

const quiet = await probed(() => sleep(1000))
const rows = []
for (let i = 0; i < Number(opts.scrapes); i++) {
  await sleep(300)
  const { result, latencies } = await probed(async () => {
    const t0 = performance.now()
    const body = await (await fetch(`http://${ready.admin}/metrics`)).text()
    return { ms: performance.now() - t0, bytes: body.length, lines: body.split('\n').length - 1 }
  })
  rows.push({ ...result, worst: latencies.at(-1), requests: latencies.length })
}
await probe.close()
await stop(proxy)
await stop(upstream)

const median = a => a[Math.floor(a.length / 2)]
console.log(`${COUNT.toLocaleString('en')} contexts, server.workers ${workers}, ${opts.dist}, load average ${os.loadavg().map(l => l.toFixed(2)).join(' ')}, Node ${process.version}`)
console.log(`Requests without a scrape: median ${median(quiet.latencies).toFixed(2)} ms, slowest ${quiet.latencies.at(-1).toFixed(1)} ms (${quiet.latencies.length} in 1 s)\n`)
console.log('| scrape | lines | MB | ms to the last byte | requests meanwhile | slowest of them ms |')
console.log('|--:|--:|--:|--:|--:|--:|')
rows.forEach((r, i) => console.log(`| ${i + 1} | ${r.lines.toLocaleString('en')} | ${(r.bytes / 1e6).toFixed(1)} | ${r.ms.toFixed(0)} | ${r.requests} | ${r.worst.toFixed(0)} |`))
process.exit(0)
