// Reloads and rollbacks under sustained load: does every response come from a
// side that the config (or override) in force allowed, and does no request fail?
//
//   TS_NODE_TRANSPILE_ONLY=1 node --import=@tapjs/typescript/import bench/load-reload.ts
//
// RELOADS (default 200) reloads per way of writing the file (in place, atomic
// rename, Kubernetes `..data` symlink swap), ROLLBACKS (default 50) rollback +
// clear cycles, CONCURRENCY (default 16) clients in a closed loop, RATE
// (requests/s, default unpaced). Prints a report; exits 1 if a property broke.
// test/e2e/load-short.test.ts runs a short version of the same code.
//
// Method. The proxy runs in this process with file watching on. Weights
// alternate 0 and 100, so each generation of the config allows exactly one
// side. Each request records the generation in force when it was sent and when
// its answer arrived; it is allowed if any generation in between allows the
// side that answered (the proxy routes at arrival, which lies in between).
// The generation changes on the proxy's 'reload' event, emitted in the same
// run of microtasks as the table swap, so no request can be routed in between.
// For a rollback the change happens somewhere inside the admin call: the call
// opens a generation that allows both sides, its answer one that allows only
// the side now in force.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { pino } from 'pino'
import { type ReloadResult, startStrangler } from '../src/main.ts'

export type WriteMethod = 'in-place' | 'rename' | 'symlink'
export type SideName = 'legacy' | 'new'

const TOKEN = 'bench-token'

interface Upstreams {
  legacy: string
  new: string
  close: () => Promise<void>
}

/** Two upstreams that answer their own name. */
async function startUpstreams (): Promise<Upstreams> {
  const servers = await Promise.all((['legacy', 'new'] as const).map(async name => {
    const body = JSON.stringify({ name })
    const server = http.createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
        res.end(body)
      })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    return server
  }))
  const url = (s: http.Server): string => `http://127.0.0.1:${(s.address() as AddressInfo).port}`
  return {
    legacy: url(servers[0]),
    new: url(servers[1]),
    close: async () => {
      for (const s of servers) s.closeAllConnections()
      await Promise.all(servers.map(s => new Promise<void>(resolve => s.close(() => resolve()))))
    }
  }
}

function configYaml (u: Upstreams, weight: number, stateFile: string): string {
  return `server:
  listen: 127.0.0.1:0
  admin: 127.0.0.1:0
  adminToken: ${TOKEN}
  stateFile: ${stateFile}
upstreams:
  monolith:
    url: ${u.legacy}
  orders-svc:
    url: ${u.new}
default: monolith
contexts:
  orders:
    match:
      paths: [/api/orders]
    legacy: monolith
    new: orders-svc
    weight: ${weight}
`
}

/** The config file as one of three writers changes it. `file` is what the proxy is given. */
class ConfigDir {
  readonly file: string
  #generation = 0

  constructor (readonly method: WriteMethod, readonly dir: string, initial: string) {
    if (method === 'symlink') {
      // dir/..<ts>/routes.yaml, dir/..data -> ..<ts>, dir/routes.yaml -> ..data/routes.yaml
      const first = this.#version(initial)
      symlinkSync(first, path.join(dir, '..data'))
      symlinkSync(path.join('..data', 'routes.yaml'), path.join(dir, 'routes.yaml'))
    } else {
      writeFileSync(path.join(dir, 'routes.yaml'), initial)
    }
    this.file = path.join(dir, 'routes.yaml')
  }

  /** A new timestamped directory holding `text`, as the kubelet writes it; returns its name. */
  #version (text: string): string {
    const name = `..2026_01_01_00_00_00.${String(++this.#generation).padStart(9, '0')}`
    mkdirSync(path.join(this.dir, name))
    writeFileSync(path.join(this.dir, name, 'routes.yaml'), text)
    return name
  }

  write (text: string): void {
    switch (this.method) {
      case 'in-place':
        writeFileSync(this.file, text)
        break
      case 'rename': {
        const tmp = path.join(this.dir, '.routes.yaml.tmp')
        writeFileSync(tmp, text)
        renameSync(tmp, this.file)
        break
      }
      case 'symlink': {
        const previous = `..2026_01_01_00_00_00.${String(this.#generation).padStart(9, '0')}`
        const next = this.#version(text)
        const tmp = path.join(this.dir, '..data_tmp')
        symlinkSync(next, tmp)
        renameSync(tmp, path.join(this.dir, '..data'))
        rmSync(path.join(this.dir, previous), { recursive: true })
        break
      }
    }
  }
}

/**
 * Generations of what the proxy may do. Each allows a set of sides; a request
 * remembers the generation at send and at answer.
 */
class Generations {
  readonly #allowed: Array<Set<SideName>> = []
  /** Requests sent and answered in the current generation: pacing waits on this. */
  answeredInCurrent = 0
  #waiter: { n: number; resolve: () => void } | null = null

  constructor (initial: SideName) {
    this.open([initial])
  }

  get current (): number {
    return this.#allowed.length - 1
  }

  get count (): number {
    return this.#allowed.length
  }

  open (sides: SideName[]): void {
    this.#allowed.push(new Set(sides))
    this.answeredInCurrent = 0
  }

  allows (from: number, to: number, side: SideName): boolean {
    for (let g = from; g <= to; g++) if (this.#allowed[g].has(side)) return true
    return false
  }

  answered (sentIn: number): void {
    if (sentIn !== this.current) return
    this.answeredInCurrent++
    if (this.#waiter !== null && this.answeredInCurrent >= this.#waiter.n) {
      const { resolve } = this.#waiter
      this.#waiter = null
      resolve()
    }
  }

  /** Resolves once `n` requests were sent and answered in the current generation. */
  answers (n: number): Promise<void> {
    if (this.answeredInCurrent >= n) return Promise.resolve()
    return new Promise(resolve => { this.#waiter = { n, resolve } })
  }
}

export interface Violation {
  side: SideName
  sentIn: number
  answeredIn: number
}

export interface LoadTally {
  requests: number
  bySide: Record<SideName, number>
  /** Non-200 answers and client errors, by status or error code. */
  failures: Record<string, number>
  violations: Violation[]
  /** Per generation, the requests sent and answered within it. */
  confined: number[]
}

/** A closed loop of `concurrency` keep-alive clients on /api/orders until `stop()`; `rate` paces it (requests/s overall). */
function startLoad (base: string, gens: Generations, concurrency: number, rate: number | null): { tally: LoadTally; stop: () => Promise<void> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  const tally: LoadTally = { requests: 0, bySide: { legacy: 0, new: 0 }, failures: {}, violations: [], confined: [] }
  let running = true
  const gap = rate === null ? 0 : 1000 * concurrency / rate
  const fail = (key: string): void => { tally.failures[key] = (tally.failures[key] ?? 0) + 1 }

  const one = (i: number): Promise<void> => new Promise(resolve => {
    const sentIn = gens.current
    const req = http.get(`${base}/api/orders/${i}`, { agent }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', (err: NodeJS.ErrnoException) => { fail(err.code ?? err.message); resolve() })
      res.on('end', () => {
        const answeredIn = gens.current
        tally.requests++
        if (sentIn === answeredIn) tally.confined[sentIn] = (tally.confined[sentIn] ?? 0) + 1
        if (res.statusCode !== 200) fail(`status ${res.statusCode ?? 0}`)
        else {
          const side = (JSON.parse(Buffer.concat(chunks).toString()) as { name: SideName }).name
          tally.bySide[side]++
          if (!gens.allows(sentIn, answeredIn, side)) tally.violations.push({ side, sentIn, answeredIn })
        }
        gens.answered(sentIn)
        resolve()
      })
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      tally.requests++
      fail(err.code ?? err.message)
      resolve()
    })
  })

  let next = 0
  const worker = async (): Promise<void> => {
    while (running) {
      await one(next++)
      if (gap > 0 && running) await new Promise(resolve => setTimeout(resolve, gap))
    }
  }
  const workers = Array.from({ length: concurrency }, worker)
  return {
    tally,
    stop: async () => {
      running = false
      await Promise.all(workers)
      agent.destroy()
    }
  }
}

export interface LoadOptions {
  concurrency?: number
  /** Requests per second overall; null: as fast as the clients go. */
  rate?: number | null
  /** Answers to wait for in each generation before the next change, so that load overlaps every one. */
  answersPerGeneration?: number
  /** How long one write may take to be picked up before it counts as missed. */
  pickupTimeoutMs?: number
}

export interface ReloadReport extends LoadTally {
  method: WriteMethod
  writes: number
  /** Writes whose new weight was in force within pickupTimeoutMs. */
  applied: number
  /** Reloads the proxy rejected (an in-place write read half-written, say). */
  rejectedReloads: number
  seconds: number
}

/** `reloads` weight changes written by `method`, each awaited until in force, under load. */
export async function reloadUnderLoad (method: WriteMethod, reloads: number, opts: LoadOptions = {}): Promise<ReloadReport> {
  const { concurrency = 16, rate = null, answersPerGeneration = 20, pickupTimeoutMs = 5000 } = opts
  const u = await startUpstreams()
  const dir = mkdtempSync(path.join(os.tmpdir(), `strangler-load-${method}-`))
  const state = path.join(mkdtempSync(path.join(os.tmpdir(), 'strangler-load-state-')), 'state.json')
  const cfg = new ConfigDir(method, dir, configYaml(u, 0, state))
  const p = await startStrangler({ configFile: cfg.file, watch: true, log: pino({ level: 'silent' }), env: {} })
  const gens = new Generations('legacy')
  let rejectedReloads = 0
  let onApplied: ((weight: number) => void) | null = null
  p.on('reload', (r: ReloadResult) => {
    if (!r.ok) {
      rejectedReloads++
      return
    }
    if (!r.changed) return
    const weight = (p.config.contexts.find(c => c.name === 'orders') as { weight: number }).weight
    gens.open([weight === 100 ? 'new' : 'legacy'])
    onApplied?.(weight)
  })

  const started = performance.now()
  const load = startLoad(`http://127.0.0.1:${p.proxyPort}`, gens, concurrency, rate)
  let applied = 0
  try {
    await gens.answers(answersPerGeneration)
    for (let i = 1; i <= reloads; i++) {
      const weight = i % 2 === 1 ? 100 : 0
      const inForce = new Promise<boolean>(resolve => {
        const timer = setTimeout(() => resolve(false), pickupTimeoutMs)
        onApplied = w => {
          if (w !== weight) return
          clearTimeout(timer)
          resolve(true)
        }
      })
      cfg.write(configYaml(u, weight, state))
      if (!await inForce) {
        // a missed write: put the weight in force through the admin path so the run can go on
        onApplied = null
        await p.reload('admin')
        continue
      }
      applied++
      await gens.answers(answersPerGeneration)
    }
  } finally {
    onApplied = null
    await load.stop()
    await p.close()
    await u.close()
    rmSync(dir, { recursive: true, force: true })
    rmSync(path.dirname(state), { recursive: true, force: true })
  }
  return { method, writes: reloads, applied, rejectedReloads, seconds: (performance.now() - started) / 1000, ...load.tally }
}

export interface RollbackReport extends LoadTally {
  cycles: number
  /** Requests sent after a rollback's answer and answered before the next admin call began: all must be legacy. */
  sentAfterRollback: number
  reachedNewAfterRollback: number
  seconds: number
}

async function adminCall (port: number, method: string, route: string, body?: unknown): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}${route}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  await res.arrayBuffer()
  return res.status
}

/** `cycles` times: roll back (all to legacy), then clear the override (back to 100% new), under load. */
export async function rollbackUnderLoad (cycles: number, opts: LoadOptions = {}): Promise<RollbackReport> {
  const { concurrency = 16, rate = null, answersPerGeneration = 20 } = opts
  const u = await startUpstreams()
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strangler-rollback-'))
  const file = path.join(dir, 'routes.yaml')
  writeFileSync(file, configYaml(u, 100, path.join(dir, 'state.json')))
  const p = await startStrangler({ configFile: file, watch: true, log: pino({ level: 'silent' }), env: {} })
  const gens = new Generations('new')
  const legacyOnly = new Set<number>()
  const started = performance.now()
  const load = startLoad(`http://127.0.0.1:${p.proxyPort}`, gens, concurrency, rate)
  try {
    await gens.answers(answersPerGeneration)
    for (let i = 0; i < cycles; i++) {
      gens.open(['legacy', 'new'])
      const rolled = await adminCall(p.adminPort, 'POST', '/contexts/orders/rollback', { reason: `load cycle ${i}` })
      if (rolled !== 200) throw new Error(`rollback answered ${rolled}`)
      gens.open(['legacy'])
      legacyOnly.add(gens.current)
      await gens.answers(answersPerGeneration)
      gens.open(['legacy', 'new'])
      const cleared = await adminCall(p.adminPort, 'DELETE', '/contexts/orders/override')
      if (cleared !== 200) throw new Error(`clearing the override answered ${cleared}`)
      gens.open(['new'])
      await gens.answers(answersPerGeneration)
    }
  } finally {
    await load.stop()
    await p.close()
    await u.close()
    rmSync(dir, { recursive: true, force: true })
  }
  const tally = load.tally
  let sentAfterRollback = 0
  for (const g of legacyOnly) sentAfterRollback += tally.confined[g] ?? 0
  const reachedNew = tally.violations.filter(v => v.side === 'new' && legacyOnly.has(v.sentIn)).length
  return { cycles, sentAfterRollback, reachedNewAfterRollback: reachedNew, seconds: (performance.now() - started) / 1000, ...tally }
}

function summary (r: ReloadReport | RollbackReport): string {
  const failed = Object.values(r.failures).reduce((a, b) => a + b, 0)
  return `${r.requests} requests (legacy ${r.bySide.legacy}, new ${r.bySide.new}) in ${r.seconds.toFixed(1)} s, ${failed} failed ${JSON.stringify(r.failures)}, ${r.violations.length} from a side no generation in force allowed`
}

async function main (): Promise<number> {
  const env = process.env
  const reloads = Number(env.RELOADS ?? 200)
  const cycles = Number(env.ROLLBACKS ?? 50)
  const opts: LoadOptions = { concurrency: Number(env.CONCURRENCY ?? 16), rate: env.RATE === undefined ? null : Number(env.RATE) }
  let ok = true
  for (const method of ['in-place', 'rename', 'symlink'] as const) {
    const r = await reloadUnderLoad(method, reloads, opts)
    const good = r.applied === r.writes && r.violations.length === 0 && Object.keys(r.failures).length === 0
    ok &&= good
    console.log(`${good ? 'ok  ' : 'FAIL'} reload by ${method}: ${r.applied}/${r.writes} writes in force, ${r.rejectedReloads} rejected reloads; ${summary(r)}`)
    if (r.violations.length > 0) console.log(`     first violations: ${JSON.stringify(r.violations.slice(0, 5))}`)
  }
  const rb = await rollbackUnderLoad(cycles, opts)
  const good = rb.reachedNewAfterRollback === 0 && rb.violations.length === 0 && Object.keys(rb.failures).length === 0
  ok &&= good
  console.log(`${good ? 'ok  ' : 'FAIL'} rollback: ${rb.cycles} rollback + clear cycles; of ${rb.sentAfterRollback} requests sent after a rollback returned (and answered before the next call), ${rb.reachedNewAfterRollback} reached new; ${summary(rb)}`)
  return ok ? 0 : 1
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(code => { process.exitCode = code }, err => {
    console.error(err)
    process.exitCode = 1
  })
}
