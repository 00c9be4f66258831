import cluster, { type Worker } from 'node:cluster'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import type { WorkerMetrics } from '../metrics.ts'
import type { Plane } from '../plane.ts'
import type { Config, HostPort } from '../types.ts'
import type { FromWorker, ToWorker, WeightMap } from './messages.ts'

const CONFIRM_MS = 5_000

/** The worker entry, next to this file (.ts when run from source, .js when built). */
const WORKER_ENTRY = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url))

interface Pending {
  waiting: Set<Worker>
  done: () => void
}

/**
 * The primary's view of the proxy workers (`server.workers` > 1): it forks
 * them, hands each the config and the effective weights, restarts one that
 * dies, and waits for every worker to confirm a change before reporting it done.
 */
export class Fleet implements Plane {
  /** Workers that asked for their config: only they can hear a broadcast (see worker.ts). */
  readonly #workers = new Set<Worker>()
  readonly #pending = new Map<number, Pending>()
  #seq = 0
  #draining = false
  #listen: HostPort | null = null
  address = ''

  /** `config` and `weights` read what is in force when a worker starts (or restarts). */
  constructor (private readonly config: () => Config, private readonly weights: () => WeightMap, private readonly size: number, private readonly log: Logger) {
    cluster.setupPrimary({ exec: WORKER_ENTRY, args: [], serialization: 'advanced' })
  }

  /** Forks the workers; resolves once every one listens on `at`. */
  listen (at: HostPort): Promise<void> {
    this.#listen = at
    return Promise.all(Array.from({ length: this.size }, () => this.#fork())).then(() => {})
  }

  #fork (): Promise<void> {
    const worker = cluster.fork()
    return new Promise((resolve, reject) => {
      worker.on('message', (m: FromWorker) => {
        if (m.t === 'hello') {
          this.#workers.add(worker)
          worker.send({ t: 'init', config: this.config(), weights: this.weights(), listen: this.#listen ?? this.config().server.listen } satisfies ToWorker)
        } else if (m.t === 'listening') {
          this.address = m.address
          this.log.info({ pid: worker.process.pid, listen: m.address }, 'proxy worker listening')
          resolve()
        } else if (m.t === 'ack' || m.t === 'metrics') this.#confirm(m.id, worker, m.t === 'metrics' ? m.data : undefined)
      })
      worker.once('exit', (code, signal) => {
        this.#workers.delete(worker)
        for (const [id] of this.#pending) this.#confirm(id, worker)
        reject(new Error(`proxy worker ${worker.process.pid} exited (code ${code}, signal ${signal}) before listening`))
        if (this.#draining) return
        this.log.error({ pid: worker.process.pid, code, signal }, 'proxy worker died; starting a new one')
        this.#fork().catch((err: Error) => this.log.error({ err: err.message }, 'proxy worker could not be restarted'))
      })
    })
  }

  readonly #collected = new Map<number, WorkerMetrics[]>()

  #confirm (id: number, worker: Worker, data?: WorkerMetrics): void {
    const p = this.#pending.get(id)
    if (p === undefined || !p.waiting.delete(worker)) return
    if (data !== undefined) this.#collected.get(id)?.push(data)
    if (p.waiting.size === 0) p.done()
  }

  /** Sends `message` (with a fresh id) to every worker; resolves with the number that did not answer in time. */
  #broadcast (make: (id: number) => ToWorker): Promise<number> {
    const id = ++this.#seq
    const waiting = new Set(this.#workers)
    return new Promise(resolve => {
      const timer = setTimeout(() => finish(waiting.size), CONFIRM_MS)
      const finish = (missing: number): void => {
        clearTimeout(timer)
        this.#pending.delete(id)
        resolve(missing)
      }
      this.#pending.set(id, { waiting, done: () => finish(0) })
      if (waiting.size === 0) return finish(0)
      for (const w of waiting) w.send(make(id))
    })
  }

  #warning (missing: number, what: string): string | null {
    if (missing === 0) return null
    this.log.error({ missing }, `${missing} proxy worker(s) did not confirm the ${what} within ${CONFIRM_MS} ms`)
    return `${missing} proxy worker(s) did not confirm the ${what} within ${CONFIRM_MS / 1000}s`
  }

  async setConfig (config: Config): Promise<string | null> {
    return this.#warning(await this.#broadcast(id => ({ t: 'config', id, config })), 'new config')
  }

  async setWeights (weights: WeightMap): Promise<string | null> {
    return this.#warning(await this.#broadcast(id => ({ t: 'weights', id, weights })), 'weight change')
  }

  /** Every worker's metrics: prom-client JSON for AggregatorRegistry.aggregate, and its responses as rows. */
  async metrics (): Promise<WorkerMetrics[]> {
    const id = this.#seq + 1
    this.#collected.set(id, [])
    await this.#broadcast(i => ({ t: 'metrics', id: i }))
    const data = this.#collected.get(id) ?? []
    this.#collected.delete(id)
    return data
  }

  /** Every worker drains its connections and exits; resolves when all have. */
  async drain (timeoutMs: number): Promise<void> {
    this.#draining = true
    const exits = Object.values(cluster.workers ?? {}).map(w => new Promise<void>(resolve => {
      if (w === undefined || w.isDead()) return resolve()
      w.once('exit', () => resolve())
      // One that has not asked for its config yet has nothing in flight.
      if (this.#workers.has(w)) w.send({ t: 'drain', timeoutMs } satisfies ToWorker)
      else w.kill()
    }))
    await Promise.all(exits)
  }
}
