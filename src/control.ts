import { EventEmitter } from 'node:events'
import { statSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { AggregatorRegistry, type Registry } from 'prom-client'
import type { MetricFamily } from './admin/board/rates.ts'
import { createAdminServer } from './admin/server.ts'
import { StartError } from './errors.ts'
import { Overrides } from './state/overrides.ts'
import { FileStore, type OverrideStore } from './state/store.ts'
import type { WeightMap } from './cluster/messages.ts'
import { formatIssue, loadConfigFile } from './config/index.ts'
import { ConfigLoader, THREAD_THRESHOLD } from './config/loader.ts'
import { watchConfig } from './config/watch.ts'
import { mergeRows, Metrics } from './metrics.ts'
import { Reloader, type ReloadResult, type ReloadTrigger } from './reload.ts'
import { Safety, type Clock } from './safety/safety.ts'
import type { ProxyObserver } from './proxy/deps.ts'
import type { Plane } from './plane.ts'
import { addressOf, DataPlane } from './proxy/plane.ts'
import type { Config } from './types.ts'

export type { ReloadResult } from './reload.ts'

export interface StartOptions {
  configFile: string
  env?: Record<string, string | undefined>
  log?: Logger
  /** Watch the config's directory for changes (default true). */
  watch?: boolean
  /** Where overrides are kept (default: a FileStore at server.stateFile, or Redis when server.state says so). */
  store?: OverrideStore
  /** Export Node's process metrics too (default true). */
  processMetrics?: boolean
  /** Time for guard windows and ramp schedules (tests move it by hand). */
  clock?: Clock
  /** Start the admin listener of server.admin (default true). */
  admin?: boolean
}

/** Set by `strangler serve` on the plugin's options: the config it already read, and who wants the running proxy. */
export const kServe = Symbol('strangler.serve')
export interface ServeHandle { config: Config; started: (s: Strangler) => void }

export { StartError }

/** The config file, read and validated once at start; every error listed, warnings logged. */
export function loadAtStart (configFile: string, env: Record<string, string | undefined>, log: Logger): Config {
  const loaded = loadConfigFile(configFile, { env, unsetVars: 'error' })
  if (loaded.config === null) throw new StartError(loaded.errors.map(formatIssue))
  for (const w of loaded.warnings) log.warn(formatIssue(w))
  return loaded.config
}

/** The override store the config asks for; ioredis (about 15 MB) is loaded only then. */
export async function storeFor (config: Config, log: Logger): Promise<OverrideStore> {
  const { state, stateFile } = config.server
  return state === null ? new FileStore(stateFile) : new (await import('./state/redis-store.ts')).RedisStore(state.redis.url, state.redis.keyPrefix, log)
}

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
 * One running proxy's control side: the config in force (held by its
 * Reloader), the runtime overrides, the guards, the metrics and the admin
 * listener, over one Plane — in this process or in worker processes, which it
 * does not need to know. Emits 'reload' with every ReloadResult.
 */
export class Strangler extends EventEmitter {
  #unwatch: () => void = () => {}
  #closing: Promise<void> | null = null
  readonly #loader = new ConfigLoader()
  readonly #reloader: Reloader
  readonly plane: Plane
  readonly admin: FastifyInstance | null
  readonly metrics: Metrics
  readonly overrides: Overrides
  readonly safety: Safety

  /** `plane` is made here, once the observer it reports to exists. */
  constructor (readonly opts: StartOptions & { env: Record<string, string | undefined> }, readonly log: Logger, config: Config, store: OverrideStore, plane: (observer: ProxyObserver) => Plane) {
    super()
    this.metrics = new Metrics({ processMetrics: opts.processMetrics !== false, role: config.server.workers > 1 ? 'control' : 'all' })
    this.metrics.setConfig(config)
    this.overrides = new Overrides(store, log)
    this.metrics.watchStore(() => this.overrides.store.up)
    this.safety = new Safety(() => this.config, this.overrides, log, ctx => this.metrics.guardTrips.labels(ctx).inc(), opts.clock)
    this.safety.configure(config)
    this.plane = plane(observe(this.metrics, this.safety))
    this.#reloader = new Reloader(config, { configFile: opts.configFile, env: opts.env, loader: this.#loader, overrides: this.overrides, plane: this.plane, metrics: this.metrics, safety: this.safety, log }, r => this.emit('reload', r))
    this.metrics.exportWeights(() => this.config.contexts.map(c => {
      const o = this.overrides.get(c.name)
      return { context: c.name, configured: c.weight, effective: o?.weight ?? c.weight, overridden: o != null && o.ramp === undefined }
    }))
    this.overrides.on('change', () => { this.#reloader.propagated = this.plane.setWeights(this.weights()) })
    this.admin = opts.admin === false
      ? null
      : createAdminServer({
          config: () => this.config,
          loadedAt: () => this.loadedAt,
          lastReloadError: () => this.lastError,
          ready: () => this.#closing === null,
          reload: () => this.reload('admin'),
          synced: () => this.#reloader.propagated,
          overrides: this.overrides,
          shadows: this.local?.shadows ?? null,
          safety: c => this.safety.status(c),
          metrics: () => this.#metricsText(),
          metricsJSON: () => this.#metricsJSON(),
          log
        })
  }

  /**
   * Everything but the proxy listener, in order: the overrides restored and
   * handed to the plane, the guards started, the admin listener, the watcher.
   */
  async begin (): Promise<void> {
    await this.overrides.restore(this.config)
    await this.plane.setWeights(this.weights())
    await this.safety.tick()
    this.safety.start()
    const { admin } = this.config.server
    await this.admin?.listen({ host: admin.host, port: admin.port })
    if (this.opts.watch !== false) this.#unwatch = watchConfig(this.opts.configFile, () => { void this.reload('watch') })
    // A file read on the loader thread at reload: start it (and warm its parser) now, not at the first reload.
    if (statSync(this.opts.configFile).size >= THREAD_THRESHOLD) void this.#loader.load(this.opts.configFile, { env: this.opts.env, unsetVars: 'error' })
  }

  get config (): Config {
    return this.#reloader.config
  }

  get loadedAt (): Date {
    return this.#reloader.loadedAt
  }

  get lastError (): string[] | null {
    return this.#reloader.lastError
  }

  /** The plane when it runs in this process. */
  get local (): DataPlane | null {
    return this.plane instanceof DataPlane ? this.plane : null
  }

  get proxyAddress (): string {
    return this.plane.address
  }

  get proxyPort (): number {
    return Number(this.proxyAddress.slice(this.proxyAddress.lastIndexOf(':') + 1))
  }

  /** host:port of the admin listener; '' without one. */
  get adminAddress (): string {
    return this.admin === null ? '' : addressOf(this.admin.server)
  }

  get adminPort (): number {
    return this.admin === null ? 0 : (this.admin.server.address() as AddressInfo).port
  }

  get draining (): boolean {
    return this.#closing !== null
  }

  /** Reads and validates the file, then swaps it in (src/reload.ts); a bad file changes nothing. */
  reload (trigger: ReloadTrigger): Promise<ReloadResult> {
    return this.#reloader.run(trigger)
  }

  /** Effective weights of the overridden contexts, in basis points: what the plane is given. */
  weights (): WeightMap {
    return this.overrides.weights()
  }

  async #metricsText (): Promise<AsyncIterable<string>> {
    return this.metrics.text(await this.#planeMetrics() ?? undefined)
  }

  async #metricsJSON (): Promise<MetricFamily[]> {
    const fleet = await this.#planeMetrics()
    const json = fleet === null ? await this.metrics.registry.getMetricsAsJSON() : await this.metrics.fleetJSON(fleet.responses, fleet.others)
    return json as MetricFamily[]
  }

  /** With workers: their responses added up, and the other metrics of all processes aggregated by prom-client. */
  async #planeMetrics (): Promise<{ responses: ReturnType<typeof mergeRows>; others: Registry } | null> {
    const workers = await this.plane.metrics()
    if (workers === null) return null
    return {
      responses: mergeRows(workers.map(w => w.rows)),
      others: AggregatorRegistry.aggregate([await this.metrics.families(), ...workers.map(w => w.families)] as Parameters<typeof AggregatorRegistry.aggregate>[0])
    }
  }

  /**
   * Graceful stop: /readyz turns 503, the proxy stops accepting, responses in
   * flight finish for up to server.drainTimeout, WebSockets are closed, then
   * the admin listener closes. Called again, it waits for the first.
   */
  close (): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close (): Promise<void> {
    this.#unwatch()
    this.safety.stop()
    await this.plane.drain(this.config.server.drainTimeoutMs)
    await this.admin?.close()
    await this.overrides.close()
    await this.#loader.close()
  }
}
