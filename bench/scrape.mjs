// What a Prometheus scrape of a 10,000-context proxy costs the requests it
// serves: every context gets traffic on both sides (so every series exists),
// then GET /metrics runs a few times while a 1 ms timer notes how late it
// fires. The proxy runs in this process (Strangler.start from dist/), so the
// client reading the 26 MB answer shares its event loop: the stall includes
// that reading, which a real Prometheus does elsewhere.
//   npm run build && node bench/scrape.mjs [SCRAPES]
import { mkdtempSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { Pool } from 'undici'
import { Strangler } from '../dist/main.js'
import { BODY, stranglerMany } from './lib/configs.mjs'
import { start, stop, waitForLine } from './lib/procs.mjs'

const scrapes = Number(process.argv[2] ?? '5')
const COUNT = 10_000
const dir = mkdtempSync(join(os.tmpdir(), 'strangler-scrape-'))
const upstream = start('upstream', process.execPath, [new URL('./servers/upstream.mjs', import.meta.url).pathname, BODY])
const { ports } = await waitForLine(upstream, v => Array.isArray(v?.ports))
const s = await Strangler.start({ configFile: stranglerMany(dir, 'scrape.yaml', ports, COUNT), log: pino({ level: 'silent' }), watch: false })

// Four users per context: with weight 50 and sticky users, both sides of nearly every context.
const client = new Pool(`http://${s.proxyAddress}`, { connections: 20 })
const sent = []
for (let c = 0; c < COUNT; c++) {
  for (let u = 0; u < 4; u++) sent.push(client.request({ path: `/c/${c}/x`, method: 'GET', headers: { 'x-user-id': `user-${u}` } }).then(r => r.body.dump()))
}
await Promise.all(sent)
await client.close()

let last = performance.now()
let longest = 0
const timer = setInterval(() => {
  const now = performance.now()
  longest = Math.max(longest, now - last)
  last = now
}, 1)
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const rows = []
for (let i = 0; i < scrapes; i++) {
  await sleep(200)
  longest = 0
  last = performance.now()
  const t0 = performance.now()
  const res = await fetch(`http://${s.adminAddress}/metrics`)
  const body = await res.text()
  const ms = performance.now() - t0
  await sleep(50)
  const stall = longest - 1
  let lines = 0
  for (let at = body.indexOf('\n'); at !== -1; at = body.indexOf('\n', at + 1)) lines++
  rows.push({ ms, stall, bytes: body.length, lines })
}
clearInterval(timer)
await s.close()
await stop(upstream)

console.log(`${COUNT.toLocaleString('en')} contexts, ${scrapes} scrapes, load average ${os.loadavg().map(l => l.toFixed(2)).join(' ')}, Node ${process.version}\n`)
console.log('| scrape | lines | MB | ms to the last byte | longest event-loop stall ms |')
console.log('|--:|--:|--:|--:|--:|')
rows.forEach((r, i) => console.log(`| ${i + 1} | ${r.lines.toLocaleString('en')} | ${(r.bytes / 1e6).toFixed(1)} | ${r.ms.toFixed(0)} | ${r.stall.toFixed(0)} |`))
process.exit(0)
