// Open-loop load at a fixed rate, for latency below saturation (wrk2 is not
// packaged here, and wrk's closed loop only measures latency at saturation).
//   node bench/lib/loadgen.mjs OUT_FILE URL RATE SECONDS MIX [CONTEXTS]
// Request i is due at start + i/RATE whether or not earlier ones have answered;
// a 1 ms timer sends every request that is due. Latency runs from the moment a
// request is handed to the connection pool (which queues it when all its
// connections are busy) to the end of the response body, so a proxy that
// stalls is charged for the requests that wait behind the stall. The latency
// from the request's scheduled time is kept too: it adds the generator's own
// lateness (its timer, or a machine too busy to run it). Writes OUT_FILE, one
// JSON object: both latencies in microseconds and what the generator achieved.
import { writeFileSync } from 'node:fs'
import { Pool } from 'undici'

const [outFile, url, rateArg, secondsArg, mix = 'api', contextsArg = '10000'] = process.argv.slice(2)
const rate = Number(rateArg)
const seconds = Number(secondsArg)
const contexts = Number(contextsArg)

let seed = 42
const random = n => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n
const mixed = Array.from({ length: 4096 }, (_, i) => {
  const path = mix === 'many' ? `/c/${random(contexts)}/items/${i}` : i % 2 === 0 ? `/api/orders/${i}` : `/api/carts/${i}`
  return { path, headers: ['x-user-id', `user-${1 + random(100000)}`] }
})

const pool = new Pool(url, { connections: 256, pipelining: 1 })
const total = Math.round(rate * seconds)
const latencies = new Uint32Array(total)
const fromSchedule = new Uint32Array(total)
let sent = 0
let done = 0
let errors = 0
let statusErrors = 0
let maxLagMs = 0

class Exchange {
  constructor (index) {
    this.index = index
    this.t0 = performance.now()
  }

  onConnect () {}
  onHeaders (status) {
    if (status >= 400) statusErrors++
    return true
  }

  onData () { return true }
  onComplete () { this.finish(true) }
  onError () { this.finish(false) }
  finish (ok) {
    const now = performance.now()
    latencies[this.index] = Math.round((now - this.t0) * 1000)
    fromSchedule[this.index] = Math.round((now - (start + this.index * 1000 / rate)) * 1000)
    if (!ok) errors++
    if (++done === total) finished()
  }
}

function send (index) {
  const r = mixed[index % mixed.length]
  pool.dispatch({ path: r.path, method: 'GET', headers: r.headers }, new Exchange(index))
}

// Warm the pool's connections first so the measured window does not open with connects.
await Promise.all(Array.from({ length: 8 }, (_, i) => pool.request({ path: mixed[i].path, method: 'GET', headers: mixed[i].headers }).then(r => r.body.dump())))

const start = performance.now()
const timer = setInterval(() => {
  const now = performance.now()
  const due = Math.min(total, Math.floor((now - start) * rate / 1000))
  if (due > sent) maxLagMs = Math.max(maxLagMs, now - (start + sent * 1000 / rate))
  while (sent < due) send(sent++)
  if (sent === total) clearInterval(timer)
}, 1)

let finishedAt = 0
function finished () {
  finishedAt = performance.now()
  writeFileSync(outFile, JSON.stringify({
    sent,
    errors,
    statusErrors,
    achievedRate: Math.round(total / ((finishedAt - start) / 1000)),
    maxScheduleLagMs: Math.round(maxLagMs * 100) / 100,
    latenciesUs: Array.from(latencies),
    fromScheduleUs: Array.from(fromSchedule)
  }))
  pool.destroy().then(() => process.exit(0))
}

setTimeout(() => {
  process.stderr.write(`loadgen: ${done}/${total} answered after ${seconds + 30} s\n`)
  process.exit(1)
}, (seconds + 30) * 1000).unref()
