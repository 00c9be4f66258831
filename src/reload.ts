import { setImmediate as turn } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { Overrides } from './state/overrides.ts'
import { diffConfigs } from './config/diff.ts'
import { formatIssue } from './config/index.ts'
import type { ConfigLoader } from './config/loader.ts'
import type { Metrics } from './metrics.ts'
import type { Plane } from './plane.ts'
import type { Safety } from './safety/safety.ts'
import type { Config } from './types.ts'

export type ReloadTrigger = 'watch' | 'signal' | 'admin'

export type ReloadResult =
  | { ok: true; changed: boolean; hash: string }
  | { ok: false; errors: string[] }

export interface ReloadDeps {
  configFile: string
  env: Record<string, string | undefined>
  loader: ConfigLoader
  overrides: Overrides
  plane: Plane
  metrics: Metrics
  safety: Safety
  log: Logger
}

/** Fields read once at start: a reload that changes them says a restart is needed. */
const AT_START = { listen: 'listen', admin: 'admin', stateFile: 'stateFile', state: 'state', workers: 'workers', headersTimeoutMs: 'headersTimeout', requestTimeoutMs: 'requestTimeout', maxHeaderBytes: 'maxHeaderBytes' } as const

/**
 * The config in force, and the one way it changes: a reload, whose steps run
 * here in this order. Reloads run one at a time, in the order they were asked for.
 */
export class Reloader {
  #config: Config
  #queue: Promise<unknown> = Promise.resolve()
  /** What the last change asked of the plane: an admin call waits for it. */
  propagated: Promise<string | null> = Promise.resolve(null)
  loadedAt = new Date()
  lastError: string[] | null = null

  constructor (config: Config, private readonly deps: ReloadDeps, private readonly done: (result: ReloadResult) => void) {
    this.#config = config
  }

  get config (): Config {
    return this.#config
  }

  run (trigger: ReloadTrigger): Promise<ReloadResult> {
    const result = this.#queue.then(() => this.#reload(trigger))
    this.#queue = result.catch(() => {})
    return result.then(r => {
      this.deps.metrics.reloads.labels(r.ok ? 'success' : 'failure').inc()
      this.deps.metrics.lastReloadOk.set(r.ok ? 1 : 0)
      this.done(r)
      return r
    })
  }

  async #reload (trigger: ReloadTrigger): Promise<ReloadResult> {
    const { loader, overrides, plane, metrics, safety, log } = this.deps
    // 1. Read and validate the file (on the loader's thread when it is large); a bad one changes nothing.
    const loaded = await loader.load(this.deps.configFile, { env: this.deps.env, unsetVars: 'error' })
    if (loaded.config === null) {
      const errors = loaded.errors.map(formatIssue)
      this.lastError = errors
      log.error({ trigger, errors, serving: this.#config.hash }, 'config reload rejected; the last good config keeps serving')
      return { ok: false, errors }
    }
    const before = this.#config
    const after = loaded.config
    this.lastError = null
    if (after.hash === before.hash) return { ok: true, changed: false, hash: after.hash }
    // 2. The diff, for the audit line. With 10,000 contexts the diff and the
    // swap (compiling the table) each take tens of milliseconds: a loop turn
    // between them lets requests in, so none waits for both.
    const diff = diffConfigs(before, after)
    await turn()
    // 3. Overrides of contexts that go away are put aside before the table changes.
    await overrides.prepare(before, after)
    // 4. The swap: this process, then the plane.
    this.#config = after
    this.propagated = plane.setConfig(after)
    this.loadedAt = new Date()
    metrics.setConfig(after)
    // One line per reload: past 100 changed contexts it names the first 100 and counts the rest.
    const listed = diff.contexts.length > 100 ? { ...diff, contexts: diff.contexts.slice(0, 100), moreContexts: diff.contexts.length - 100 } : diff
    log.info({ audit: true, trigger, by: trigger === 'admin' ? 'admin' : 'config-file', from: before.hash, to: after.hash, ...listed }, 'config reloaded')
    // 5. Overrides checked against the new config (a changed context drops its own), then the guards.
    await overrides.reconcile(after, 'config reload')
    safety.configure(after)
    for (const [field, key] of Object.entries(AT_START) as Array<[keyof typeof AT_START, string]>) {
      if (JSON.stringify(before.server[field]) !== JSON.stringify(after.server[field])) {
        log.warn({ [key]: after.server[field] }, `server.${key} changed: restart the proxy to apply it`)
      }
    }
    return { ok: true, changed: true, hash: after.hash }
  }
}
