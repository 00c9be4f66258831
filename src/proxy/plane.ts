import type http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { EffectiveWeight } from '../routing/decide.ts'
import { compileTable } from '../routing/table.ts'
import { effectiveWeight } from '../state/weight.ts'
import type { Config, HostPort } from '../types.ts'
import { trustList } from './headers.ts'
import { bindListener, proxyRoute } from './listener.ts'
import type { ProxyObserver, Snapshot } from './deps.ts'
import { createProxyHandlers } from './server.ts'
import { UpstreamPools } from './upstreams.ts'
import { Shadows } from '../shadow/shadows.ts'
import { previewer } from '../routing/preview.ts'
import { noTracing, type Tracing } from './tracing.ts'

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
/** One Plane (src/plane.ts): it is checked against the interface where main.ts and plugin.ts hand it over. */
export class DataPlane {
  #snapshot: Snapshot
  #draining = false
  readonly #weights = new Map<string, number>()
  readonly #weightOf: EffectiveWeight = effectiveWeight(this.#weights)

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

  async setWeights (weights: Readonly<Record<string, number>>): Promise<null> {
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
