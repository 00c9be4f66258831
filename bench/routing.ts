// Routing hot-path benchmark: does matching cost grow with the number of contexts?
// Run: TS_NODE_TRANSPILE_ONLY=1 node --import=@tapjs/typescript/import bench/routing.ts
// (Node 20 cannot strip types and tsx is not installed; this is the ts-node
// loader tap itself uses for the tests.)
import { canonicalize } from '../src/routing/path.ts'
import { matchContext, normalizeHost } from '../src/routing/match.ts'
import { pickSide } from '../src/routing/split.ts'
import { stickyKey } from '../src/routing/sticky.ts'
import { compileTable, type RoutingTable } from '../src/routing/table.ts'
import type { Config, Context } from '../src/types.ts'
import { configOf } from '../test/fixtures/config.ts'

/** Context i owns /svc/i; every third has hosts, every fifth has methods. */
function contextAt (i: number): Context {
  return {
    name: `svc-${i}`,
    paths: [`/svc/${i}`],
    hosts: i % 3 === 0 ? [`h${i}.example.com`, '*.wild.example.com'] : null,
    methods: i % 5 === 0 ? ['GET', 'POST'] : null,
    legacy: 'monolith',
    new: 'svc',
    weight: 25,
    sticky: { header: 'x-user-id' },
    rewrite: {},
    shadow: null,
    fallback: null,
    guard: null,
    ramp: null
  }
}

function config (count: number): Config {
  return configOf(Array.from({ length: count }, (_, i) => contextAt(i)))
}

interface Request {
  host: string
  method: string
  path: string
}

// Deterministic, so runs compare.
let seed = 42
const random = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n

const hostFor = (i: number) => (i % 3 === 0 ? `h${i}.example.com` : 'www.example.com')

function requests (kind: 'deep' | 'shallow' | 'miss', contexts: number): Request[] {
  const out: Request[] = []
  for (let r = 0; r < 4096; r++) {
    const i = random(contexts)
    const method = r % 4 === 0 ? 'POST' : 'GET'
    if (kind === 'deep') out.push({ host: hostFor(i), method, path: `/svc/${i}/orders/${r}/items/${r % 7};v=2` })
    else if (kind === 'shallow') out.push({ host: hostFor(i), method, path: `/svc/${i}` })
    else if (r % 2 === 0) out.push({ host: 'www.example.com', method, path: `/static/js/app.${r}.chunk.js` })
    else out.push({ host: 'www.example.com', method, path: `/svc/${20000 + r}/orders/${r}` })
  }
  return out
}

let sink = 0

function nsPerMatch (table: RoutingTable, reqs: Request[], rounds: number): number {
  const start = process.hrtime.bigint()
  for (let round = 0; round < rounds; round++) {
    for (let r = 0; r < reqs.length; r++) {
      const q = reqs[r]
      const found = matchContext(table, q.host, q.method, q.path)
      sink += found === null ? -1 : found.index
    }
  }
  return Number(process.hrtime.bigint() - start) / (rounds * reqs.length)
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

function measure (table: RoutingTable, reqs: Request[]): number {
  nsPerMatch(table, reqs, 50) // warm-up: let the JIT settle
  return median(Array.from({ length: 7 }, () => nsPerMatch(table, reqs, 100)))
}

const compileMs: number[] = []
let big: RoutingTable | undefined
for (let run = 0; run < 7; run++) {
  const cfg = config(10000)
  const start = performance.now()
  big = compileTable(cfg)
  compileMs.push(performance.now() - start)
}
if (big === undefined) throw new Error('unreachable')
const small = compileTable(config(2))

// Contexts 0 and 1 are the same in both tables, so "on 2" sends the very same
// requests to each: any difference is the table's size. "over all" spreads
// requests uniformly over 10,000 contexts, which also spreads them over more
// memory than the CPU caches hold.
interface Row {
  kind: string
  two: number
  bigOnTwo: number
  bigOverAll: number
}
const rows: Row[] = (['deep', 'shallow', 'miss'] as const).map(kind => {
  const onTwo = requests(kind, 2)
  return {
    kind,
    two: measure(small, onTwo),
    bigOnTwo: measure(big, onTwo),
    bigOverAll: measure(big, requests(kind, 10000))
  }
})
const mean = (pick: (row: Row) => number) => rows.reduce((sum, row) => sum + pick(row), 0) / rows.length
rows.push({ kind: 'mean', two: mean(r => r.two), bigOnTwo: mean(r => r.bigOnTwo), bigOverAll: mean(r => r.bigOverAll) })

const ns = (value: number, width: number) => `${value.toFixed(0)} ns`.padStart(width)
const ratio = (value: number, width: number) => `${value.toFixed(2)}x`.padStart(width)
console.log(`node ${process.version}`)
console.log(`compileTable, 10,000 contexts: ${median(compileMs).toFixed(1)} ms (median of 7)`)
console.log('')
console.log('matchContext ns/op   2 contexts | 10,000 contexts: on 2   ratio | over all 10,000   ratio')
for (const row of rows) {
  console.log(
    `${row.kind.padEnd(16)} ${ns(row.two, 12)} | ${ns(row.bigOnTwo, 22)} ${ratio(row.bigOnTwo / row.two, 7)} | ${ns(row.bigOverAll, 15)} ${ratio(row.bigOverAll / row.two, 7)}`
  )
}
console.log('on 2: the same requests to both tables; over all: spread over ~3,400 distinct contexts,')
console.log('which costs CPU cache misses, not lookups (one Map lookup per candidate prefix either way)')

// The rest of one routing decision, for scale.
function nsPer (label: string, fn: (i: number) => number): void {
  for (let i = 0; i < 200000; i++) sink += fn(i)
  const n = 1000000
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) sink += fn(i)
  console.log(`${label.padEnd(42)} ${(Number(process.hrtime.bigint() - start) / n).toFixed(0).padStart(5)} ns`)
}
const ctx = big.contexts[1]
const headers = { host: 'Shop.Example.com:8080', 'x-user-id': 'user-123456', cookie: 'a=1; sid="abc"; b=2' }
const urls = ['/svc/1/orders/7?x=1', '/svc/1/%e2%9c%93//x', '/%61pi/orders']
console.log('')
nsPer('canonicalize (clean path + query)', () => canonicalize(urls[0])!.path.length)
nsPer('canonicalize (escapes, // to merge)', i => canonicalize(urls[1 + (i & 1)])!.path.length)
nsPer('normalizeHost (upper case + port)', () => normalizeHost(headers.host).length)
nsPer('stickyKey (cookie)', () => stickyKey({ cookie: 'sid' }, headers)!.length)
nsPer('pickSide (sticky key)', i => (pickSide(ctx, 2500, i & 1 ? 'user-123456' : 'user-654321') === 'new' ? 1 : 0))
nsPer('pickSide (no key)', () => (pickSide(ctx, 2500, undefined) === 'new' ? 1 : 0))
if (sink === 0.5) console.log(sink)
