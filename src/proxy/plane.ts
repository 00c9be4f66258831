import type http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { WeightMap } from '../cluster/messages.ts'
import type { WorkerMetrics } from '../metrics.ts'
import type { EffectiveWeight } from '../routing/decide.ts'
import { compileTable } from '../routing/table.ts'
import type { Config, HostPort } from '../types.ts'
import { trustList } from './headers.ts'
import { bindListener, proxyRoute } from './listener.ts'
import { createProxyHandlers, type ProxyObserver, type Snapshot } from './server.ts'
import { UpstreamPools } from './upstreams.ts'
import { Shadows } from '../shadow/shadows.ts'
import { previewer } from '../routing/preview.ts'
import { noTracing, type Tracing } from './tracing.ts'

/**
 * Where requests are forwarded: in this process (DataPlane) or in worker
 * processes (Fleet). The control side (config file, overrides, admin) drives
 * either through this, and nothing else.
 */
export interface Plane {
  /** Starts accepting on `at`. */
  listen (at: HostPort): Promise<void>
  /** The config now in force; resolves with a warning when part of the plane did not confirm it. */
  setConfig (config: Config): Promise<string | null>
  /** Effective weights of overridden contexts (basis points); the others follow the config. */
  setWeights (weights: WeightMap): Promise<string | null>
  /** Metrics kept outside this process (one entry per worker); null when this process's registry holds them. */
  metrics (): Promise<WorkerMetrics[] | null>
  /** Stops accepting, lets responses in flight finish for up to `timeoutMs`, then closes everything. */
  drain (timeoutMs: number): Promise<void>
  /** host:port of the proxy listener. */
  readonly address: string
}

export function snapshotOf (config: Config): Snapshot {
  return Object.freeze({ table: compileTable(config), trust: trustList(config.server.trustProxy), accessLog: config.server.accessLog, accessLogQuery: config.server.accessLogQuery, maxBodyBytes: config.server.maxBodyBytes, dropUnderscores: config.server.underscoreHeaders === 'drop' })
}

export function addressOf (server: http.Server): string {
  const a = server.address() as AddressInfo
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
}

/**
 * The data plane on a Fastify instance: its catch-all route, its routing
 * snapshot and its upstream pools. The instance is strangler's own listener
 * (proxyApp: `strangler serve`, or a worker with `server.workers`), or a
 * user's app that registered the plugin.
 */
export class DataPlane implements Plane {
  #snapshot: Snapshot
  #draining = false
  readonly #weights = new Map<string, number>()
  readonly #weightOf: EffectiveWeight = ctx => {
    if (this.#weights.size === 0) return ctx.weightBp
    return this.#weights.get(ctx.name) ?? ctx.weightBp
  }

  readonly pools = new UpstreamPools()
  readonly tunnels: Set<Duplex>
  readonly shadows: Shadows

  /** `previewSecret`: STRANGLER_PREVIEW_SECRET; null turns preview tokens off. `tracing` is closed by drain(). */
  constructor (readonly app: FastifyInstance, config: Config, observer: ProxyObserver, log: Logger, previewSecret: string | null, private readonly tracing: Tracing = noTracing) {
    this.#snapshot = snapshotOf(config)
    this.shadows = new Shadows(this.pools, observer)
    const handlers = createProxyHandlers({
      shadows: this.shadows,
      preview: previewer(previewSecret, (context, result) => observer.previewResult(context, result)),
      snapshot: () => this.#snapshot,
      weightOf: this.#weightOf,
      pools: this.pools,
      observer,
      log,
      tracing,
      draining: () => this.#draining
    })
    this.tunnels = handlers.tunnels
    proxyRoute(app, handlers)
    bindListener(app, handlers)
  }

  get server (): http.Server {
    return this.app.server
  }

  get snapshot (): Snapshot {
    return this.#snapshot
  }

  /** Swaps one reference: requests already routed finish on the table they started with. */
  async setConfig (config: Config): Promise<null> {
    this.#snapshot = snapshotOf(config)
    this.pools.retain(Object.values(config.upstreams))
    return null
  }

  async setWeights (weights: WeightMap): Promise<null> {
    this.#weights.clear()
    for (const [name, bp] of Object.entries(weights)) this.#weights.set(name, bp)
    return null
  }

  async metrics (): Promise<null> {
    return null
  }

  /** Listens on the instance's own server: one address, as given (Fastify's listen would add ::1 to localhost). */
  async listen ({ host, port }: HostPort): Promise<void> {
    await this.app.ready()
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => {
        this.server.off('error', reject)
        resolve()
      })
    })
  }

  get address (): string {
    return addressOf(this.server)
  }

  /**
   * Stops accepting, lets responses in flight finish (each on a connection that
   * then closes) for up to `timeoutMs`, closes WebSockets, then tears down.
   */
  async drain (timeoutMs: number): Promise<void> {
    if (this.#draining) return
    this.#draining = true
    for (const t of this.tunnels) t.destroy()
    if (this.server.listening) {
      const closed = new Promise<void>(resolve => this.server.close(() => resolve()))
      this.server.closeIdleConnections()
      const sweep = setInterval(() => this.server.closeIdleConnections(), 50)
      let timer: NodeJS.Timeout | undefined
      const deadline = new Promise<void>(resolve => { timer = setTimeout(resolve, timeoutMs) })
      await Promise.race([closed, deadline])
      clearInterval(sweep)
      clearTimeout(timer)
      this.server.closeAllConnections()
      await closed
    }
    this.pools.destroy()
    // The spans of the last responses are still buffered.
    await this.tracing.close()
  }
}
