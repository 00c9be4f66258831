import { EventEmitter } from 'node:events'
import { statSync } from 'node:fs'
import { setImmediate as turn } from 'node:timers/promises'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { StartError } from './errors.ts'
import { createLogger } from './log.ts'
import { AggregatorRegistry, type Registry } from 'prom-client'
import type { MetricFamily } from './admin/board/rates.ts'
import { createAdminServer } from './admin/server.ts'
import { Overrides } from './state/overrides.ts'
import { FileStore, type OverrideStore } from './state/store.ts'
import { Fleet } from './cluster/fleet.ts'
import type { WeightMap } from './cluster/messages.ts'
import { diffConfigs } from './config/diff.ts'
import { formatIssue, loadConfigFile } from './config/index.ts'
import { ConfigLoader, THREAD_THRESHOLD } from './config/loader.ts'
import { watchConfig } from './config/watch.ts'
import { mergeRows, Metrics } from './metrics.ts'
import { Safety, type Clock } from './safety/safety.ts'
import type { ProxyObserver } from './proxy/deps.ts'
import { addressOf, DataPlane } from './proxy/plane.ts'
import { noTracing, type Tracing } from './proxy/tracing.ts'
import { tracingFromEnv } from './tracing/from-env.ts'
import type { Config } from './types.ts'

export interface StartOptions {
  configFile: string
  env?: Record<string, string | undefined>
  log?: Logger
  /** Watch the config's directory for changes (default true). */
  watch?: boolean
  /** Where overrides are kept (default: a FileStore at server.stateFile). */
  store?: OverrideStore
  /** Export Node's process metrics too (default true). */
  processMetrics?: boolean
  /** Time for guard windows and ramp schedules (tests move it by hand). */
  clock?: Clock
}

export type ReloadResult =
  | { ok: true; changed: boolean; hash: string }
  | { ok: false; errors: string[] }

export { StartError }

/** Metrics see every event; guards see responses and fallbacks. */
function observe (metrics: Metrics, safety: Safety): ProxyObserver {
  return {
    response: (c, side, status, seconds) => {
      metrics.response(c, side, status, seconds)
      safety.response(c, side, status, seconds)
    },
    fallback: (c, reason) => {
      metrics.fallback(c, reason)
      safety.fallback(c)
    },
    upstreamError: (c, side, reason) => metrics.upstreamError(c, side, reason),
    rejectedRequest: reason => metrics.rejectedRequest(reason),
    shadowResult: (c, result) => metrics.shadowResult(c, result),
    previewResult: (c, result) => metrics.previewResult(c, result),
    segmentDecision: (c, segment, side) => metrics.segmentDecision(c, segment, side)
  }
}

/**
 * One running proxy: the config in force, the runtime overrides, the admin
 * listener, and the data plane — in this process (`local`), or in
 * `server.workers` worker processes (`fleet`). Emits 'reload' with every
 * ReloadResult.
 */
export class Strangler extends EventEmitter {
  #config: Config
  #unwatch: () => void = () => {}
  #draining = false
  /** The last propagation to the workers: what an admin call waits for. */
  #synced: Promise<string | null> = Promise.resolve(null)
  /** Reloads run one at a time, in the order they were asked for. */
  #reloading: Promise<unknown> = Promise.resolve()
  readonly #loader = new ConfigLoader()
  readonly local: DataPlane | null
  readonly fleet: Fleet | null
  readonly admin: FastifyInstance
  readonly metrics: Metrics
  readonly overrides: Overrides
  readonly safety: Safety
  lastError: string[] | null = null
  loadedAt = new Date()

  private constructor (readonly opts: StartOptions & { env: Record<string, string | undefined> }, readonly log: Logger, config: Config, tracing: Tracing) {
    super()
    this.#config = config
    const workers = config.server.workers
    this.metrics = new Metrics({ processMetrics: opts.processMetrics !== false, role: workers > 1 ? 'control' : 'all' })
    this.metrics.setConfig(config)
    this.overrides = new Overrides(opts.store ?? new FileStore(config.server.stateFile), log)
    this.metrics.watchStore(() => this.overrides.store.up)
    this.safety = new Safety(() => this.config, this.overrides, log, ctx => this.metrics.guardTrips.labels(ctx).inc(), opts.clock)
    this.safety.configure(config)
    const secret = opts.env.STRANGLER_PREVIEW_SECRET
    this.local = workers > 1 ? null : new DataPlane(config, this.overrides.weightOf, observe(this.metrics, this.safety), log, secret === undefined || secret === '' ? null : secret, tracing)
    this.fleet = workers > 1 ? new Fleet(config, {}, workers, log) : null
    this.metrics.exportWeights(() => this.config.contexts.map(c => {
      const o = this.overrides.get(c.name)
      return { context: c.name, configured: c.weight, effective: o?.weight ?? c.weight, overridden: o != null && o.ramp === undefined }
    }))
    this.overrides.on('change', () => {
      if (this.fleet !== null) this.#synced = this.fleet.setWeights(this.#weightMap())
    })
    this.admin = createAdminServer({
      config: () => this.config,
      loadedAt: () => this.loadedAt,
      lastReloadError: () => this.lastError,
      ready: () => !this.#draining,
      reload: () => this.reload('admin'),
      synced: () => this.#synced,
      overrides: this.overrides,
      shadows: this.local?.shadows ?? null,
      safety: c => this.safety.status(c),
      metrics: () => this.#metricsText(),
      metricsJSON: () => this.#metricsJSON(),
      log
    })
  }

  static async start (opts: StartOptions): Promise<Strangler> {
    const env = opts.env ?? process.env
    const log = opts.log ?? createLogger(env)
    const loaded = loadConfigFile(opts.configFile, { env, unsetVars: 'error' })
    if (loaded.config === null) throw new StartError(loaded.errors.map(formatIssue))
    for (const w of loaded.warnings) log.warn(formatIssue(w))
    // ioredis (about 15 MB) is loaded only when the config asks for Redis.
    const { state } = loaded.config.server
    const store = opts.store ?? (state === null ? undefined : new (await import('./state/redis-store.ts')).RedisStore(state.redis.url, state.redis.keyPrefix, log))
    // The OpenTelemetry SDK reads process.env, whatever `env` says; with workers, each traces its own requests.
    const tracing = loaded.config.server.workers > 1 ? noTracing : await tracingFromEnv(process.env, log)
    const s = new Strangler({ ...opts, env, store }, log, loaded.config, tracing)
    await s.overrides.restore(loaded.config)
    await s.safety.tick()
    s.safety.start()
    const { server } = loaded.config
    if (s.local !== null) await s.local.listen(server.listen)
    else {
      await s.#synced
      await (s.fleet as Fleet).start()
    }
    try {
      await s.admin.listen({ host: server.admin.host, port: server.admin.port })
    } catch (err) {
      await s.#stopPlane()
      throw err
    }
    if (opts.watch !== false) s.#unwatch = watchConfig(opts.configFile, () => { void s.reload('watch') })
    // A file read on the loader thread at reload: start it (and warm its parser) now, not at the first reload.
    if (statSync(opts.configFile).size >= THREAD_THRESHOLD) void s.#loader.load(opts.configFile, { env, unsetVars: 'error' })
    log.info({ hash: loaded.config.hash, listen: s.proxyAddress, admin: s.adminAddress, workers: server.workers, contexts: loaded.config.contexts.length }, 'proxy listening')
    return s
  }

  get config (): Config {
    return this.#config
  }

  get proxyAddress (): string {
    return this.local !== null ? this.local.address : (this.fleet as Fleet).address
  }

  get proxyPort (): number {
    return Number(this.proxyAddress.slice(this.proxyAddress.lastIndexOf(':') + 1))
  }

  get adminAddress (): string {
    return addressOf(this.admin.server)
  }

  get adminPort (): number {
    return (this.admin.server.address() as AddressInfo).port
  }

  get draining (): boolean {
    return this.#draining
  }

  /**
   * Reads and validates the file on a worker thread, compiles the table, then
   * swaps one reference; a bad file changes nothing.
   */
  reload (trigger: 'watch' | 'signal' | 'admin'): Promise<ReloadResult> {
    const run = this.#reloading.then(() => this.#reload(trigger))
    this.#reloading = run.catch(() => {})
    return run.then(result => {
      this.metrics.reloads.labels(result.ok ? 'success' : 'failure').inc()
      this.metrics.lastReloadOk.set(result.ok ? 1 : 0)
      this.emit('reload', result)
      return result
    })
  }

  async #reload (trigger: 'watch' | 'signal' | 'admin'): Promise<ReloadResult> {
    const loaded = await this.#loader.load(this.opts.configFile, { env: this.opts.env, unsetVars: 'error' })
    if (loaded.config === null) {
      const errors = loaded.errors.map(formatIssue)
      this.lastError = errors
      this.log.error({ trigger, errors, serving: this.config.hash }, 'config reload rejected; the last good config keeps serving')
      return { ok: false, errors }
    }
    const before = this.config
    const after = loaded.config
    this.lastError = null
    if (after.hash === before.hash) return { ok: true, changed: false, hash: after.hash }
    // With 10,000 contexts the diff and the swap (compiling the table) each
    // take tens of milliseconds: a loop turn between them lets requests in,
    // so none waits for both.
    const diff = diffConfigs(before, after)
    await turn()
    await this.overrides.prepare(before, after)
    this.#config = after
    if (this.local !== null) this.local.setConfig(after)
    else this.#synced = (this.fleet as Fleet).setConfig(after)
    this.loadedAt = new Date()
    this.metrics.setConfig(after)
    // One line per reload: past 100 changed contexts it names the first 100 and counts the rest.
    const listed = diff.contexts.length > 100 ? { ...diff, contexts: diff.contexts.slice(0, 100), moreContexts: diff.contexts.length - 100 } : diff
    this.log.info({ audit: true, trigger, by: trigger === 'admin' ? 'admin' : 'config-file', from: before.hash, to: after.hash, ...listed }, 'config reloaded')
    await this.overrides.reconcile(after, 'config reload')
    this.safety.configure(after)
    const atStart = { listen: 'listen', admin: 'admin', stateFile: 'stateFile', state: 'state', workers: 'workers', headersTimeoutMs: 'headersTimeout', requestTimeoutMs: 'requestTimeout', maxHeaderBytes: 'maxHeaderBytes' } as const
    for (const [field, key] of Object.entries(atStart) as Array<[keyof typeof atStart, string]>) {
      if (JSON.stringify(before.server[field]) !== JSON.stringify(after.server[field])) {
        this.log.warn({ [key]: after.server[field] }, `server.${key} changed: restart the proxy to apply it`)
      }
    }
    return { ok: true, changed: true, hash: after.hash }
  }

  #weightMap (): WeightMap {
    return this.overrides.weights()
  }

  async #metricsText (): Promise<AsyncIterable<string>> {
    return this.metrics.text(await this.#fleetMetrics() ?? undefined)
  }

  async #metricsJSON (): Promise<MetricFamily[]> {
    const fleet = await this.#fleetMetrics()
    const json = fleet === null ? await this.metrics.registry.getMetricsAsJSON() : await this.metrics.fleetJSON(fleet.responses, fleet.others)
    return json as MetricFamily[]
  }

  /** With workers: their responses added up, and the other metrics of all processes aggregated by prom-client. */
  async #fleetMetrics (): Promise<{ responses: ReturnType<typeof mergeRows>; others: Registry } | null> {
    if (this.fleet === null) return null
    const workers = await this.fleet.metrics()
    return {
      responses: mergeRows(workers.map(w => w.rows)),
      others: AggregatorRegistry.aggregate([await this.metrics.families(), ...workers.map(w => w.families)] as Parameters<typeof AggregatorRegistry.aggregate>[0])
    }
  }

  #stopPlane (): Promise<void> {
    const ms = this.config.server.drainTimeoutMs
    return this.local !== null ? this.local.drain(ms) : (this.fleet as Fleet).drain(ms)
  }

  /**
   * Graceful stop: /readyz turns 503, the proxy stops accepting, responses in
   * flight finish for up to server.drainTimeout, WebSockets are closed, then
   * the admin listener closes.
   */
  async close (): Promise<void> {
    if (this.#draining) return
    this.#draining = true
    this.#unwatch()
    this.safety.stop()
    await this.#stopPlane()
    await this.admin.close()
    await this.overrides.close()
    await this.#loader.close()
  }
}
