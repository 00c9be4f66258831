import { EventEmitter } from 'node:events'
import type http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { pino, type Logger } from 'pino'
import { createAdminServer } from './admin/server.ts'
import { Overrides } from './admin/overrides.ts'
import { FileStore, type OverrideStore } from './admin/store.ts'
import { diffConfigs } from './config/diff.ts'
import { formatIssue, loadConfigFile } from './config/index.ts'
import { watchConfig } from './config/watch.ts'
import { Metrics } from './metrics.ts'
import { compileTable } from './routing/table.ts'
import { trustList } from './proxy/headers.ts'
import { createProxyServer, type Snapshot } from './proxy/server.ts'
import { UpstreamPools } from './proxy/upstreams.ts'
import type { Config, HostPort } from './types.ts'

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
}

export type ReloadResult =
  | { ok: true; changed: boolean; hash: string }
  | { ok: false; errors: string[] }

export class StartError extends Error {
  constructor (readonly errors: string[]) {
    super(`invalid config:\n${errors.join('\n')}`)
  }
}

function snapshotOf (config: Config): Snapshot {
  return Object.freeze({ table: compileTable(config), trust: trustList(config.server.trustProxy), accessLog: config.server.accessLog })
}

function listen (server: http.Server, { host, port }: HostPort): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

function addressOf (server: http.Server): string {
  const a = server.address() as AddressInfo
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
}

/**
 * One running proxy: the proxy listener, the admin listener, the config in
 * force and the runtime overrides. Emits 'reload' with every ReloadResult.
 */
export class Strangler extends EventEmitter {
  #snapshot: Snapshot
  #unwatch: () => void = () => {}
  #draining = false
  readonly pools = new UpstreamPools()
  readonly proxy: http.Server
  readonly tunnels: Set<Duplex>
  readonly admin: FastifyInstance
  readonly metrics: Metrics
  readonly overrides: Overrides
  lastError: string[] | null = null
  loadedAt = new Date()

  private constructor (readonly opts: StartOptions & { env: Record<string, string | undefined> }, readonly log: Logger, config: Config) {
    super()
    this.#snapshot = snapshotOf(config)
    this.metrics = new Metrics({ defaults: opts.processMetrics !== false })
    this.metrics.setConfig(config.hash)
    this.overrides = new Overrides(opts.store ?? new FileStore(config.server.stateFile), log)
    this.overrides.on('change', () => this.#exportWeights())
    const { server, tunnels } = createProxyServer({
      snapshot: () => this.#snapshot,
      weightOf: this.overrides.weightOf,
      pools: this.pools,
      observer: this.metrics,
      log,
      draining: () => this.#draining
    })
    this.proxy = server
    this.tunnels = tunnels
    this.admin = createAdminServer({
      config: () => this.config,
      loadedAt: () => this.loadedAt,
      lastReloadError: () => this.lastError,
      ready: () => !this.#draining,
      reload: () => this.reload('admin'),
      overrides: this.overrides,
      metrics: async () => ({ contentType: this.metrics.registry.contentType, body: await this.metrics.registry.metrics() }),
      log
    })
  }

  static async start (opts: StartOptions): Promise<Strangler> {
    const env = opts.env ?? process.env
    const log = opts.log ?? pino({ name: 'strangler' })
    const loaded = loadConfigFile(opts.configFile, { env, unsetVars: 'error' })
    if (loaded.config === null) throw new StartError(loaded.errors.map(formatIssue))
    for (const w of loaded.warnings) log.warn(formatIssue(w))
    const s = new Strangler({ ...opts, env }, log, loaded.config)
    await s.overrides.restore(loaded.config)
    s.#exportWeights()
    const { server } = loaded.config
    await listen(s.proxy, server.listen)
    try {
      await s.admin.listen({ host: server.admin.host, port: server.admin.port })
    } catch (err) {
      s.proxy.close()
      throw err
    }
    if (opts.watch !== false) s.#unwatch = watchConfig(opts.configFile, () => { s.reload('watch') })
    log.info({ hash: loaded.config.hash, listen: s.proxyAddress, admin: s.adminAddress, contexts: loaded.config.contexts.length }, 'proxy listening')
    return s
  }

  get config (): Config {
    return this.#snapshot.table.config
  }

  get snapshot (): Snapshot {
    return this.#snapshot
  }

  get proxyAddress (): string {
    return addressOf(this.proxy)
  }

  get proxyPort (): number {
    return (this.proxy.address() as AddressInfo).port
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

  /** Validates and compiles the file, then swaps one reference; a bad file changes nothing. */
  reload (trigger: 'watch' | 'signal' | 'admin'): ReloadResult {
    const result = this.#reload(trigger)
    this.metrics.reloads.labels(result.ok ? 'success' : 'failure').inc()
    this.emit('reload', result)
    return result
  }

  #reload (trigger: 'watch' | 'signal' | 'admin'): ReloadResult {
    const loaded = loadConfigFile(this.opts.configFile, { env: this.opts.env, unsetVars: 'error' })
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
    this.#snapshot = snapshotOf(after)
    this.loadedAt = new Date()
    this.pools.retain(Object.values(after.upstreams))
    this.metrics.setConfig(after.hash)
    const diff = diffConfigs(before, after)
    this.log.info({ audit: true, trigger, by: trigger === 'admin' ? 'admin' : 'config-file', from: before.hash, to: after.hash, ...diff }, 'config reloaded')
    this.overrides.reconcile(after, 'config reload')
    this.#exportWeights()
    for (const key of ['listen', 'admin', 'stateFile'] as const) {
      if (JSON.stringify(before.server[key]) !== JSON.stringify(after.server[key])) {
        this.log.warn({ [key]: after.server[key] }, `server.${key} changed: restart the proxy to apply it`)
      }
    }
    return { ok: true, changed: true, hash: after.hash }
  }

  #exportWeights (): void {
    this.metrics.setWeights(this.config.contexts.map(c => ({
      context: c.name,
      configured: c.weight,
      effective: this.overrides.get(c.name)?.weight ?? c.weight
    })))
  }

  /**
   * Graceful stop: /readyz turns 503, the listener stops accepting, responses
   * in flight finish (each on a connection that then closes) for up to
   * server.drainTimeout, WebSockets are closed, then everything is torn down.
   */
  async close (): Promise<void> {
    if (this.#draining) return
    this.#draining = true
    this.#unwatch()
    this.overrides.close()
    for (const t of this.tunnels) t.destroy()
    const closed = new Promise<void>(resolve => this.proxy.close(() => resolve()))
    this.proxy.closeIdleConnections()
    const sweep = setInterval(() => this.proxy.closeIdleConnections(), 50)
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<void>(resolve => { timer = setTimeout(resolve, this.config.server.drainTimeoutMs) })
    await Promise.race([closed, deadline])
    clearInterval(sweep)
    clearTimeout(timer)
    this.proxy.closeAllConnections()
    await closed
    this.pools.destroy()
    await this.admin.close()
  }
}
