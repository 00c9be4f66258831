import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import type { EffectiveWeight } from '../routing/decide.ts'
import type { Config, Context } from '../types.ts'
import type { Override, OverrideMap, OverrideStore } from './store.ts'

export function contextFingerprint (c: Context): string {
  return createHash('sha256').update(JSON.stringify(c)).digest('hex').slice(0, 12)
}

const MAX_TIMER = 2 ** 31 - 1

/**
 * Runtime overrides on top of the YAML. The proxy reads them through `weightOf`
 * on every request, so a change applies to the very next one. Emits 'change'
 * after every change, whatever made it (API, TTL, config change).
 */
export class Overrides extends EventEmitter {
  readonly #map = new Map<string, { bp: number; override: Override }>()
  readonly #timers = new Map<string, NodeJS.Timeout>()
  /** The last error writing the store, or null once a write succeeds. */
  persistError: string | null = null
  #config: Config | null = null

  constructor (readonly store: OverrideStore, private readonly log: Logger) {
    super()
  }

  readonly weightOf: EffectiveWeight = ctx => {
    if (this.#map.size === 0) return ctx.weightBp
    const entry = this.#map.get(ctx.name)
    return entry === undefined ? ctx.weightBp : entry.bp
  }

  get (name: string): Override | null {
    return this.#map.get(name)?.override ?? null
  }

  all (): OverrideMap {
    const out: OverrideMap = {}
    for (const [name, { override }] of this.#map) out[name] = override
    return out
  }

  /** Restores saved overrides that still apply to `config`; a store that cannot be read starts empty, with a warning. */
  async restore (config: Config): Promise<void> {
    this.#config = config
    let saved: OverrideMap
    try {
      saved = await this.store.load()
    } catch (err) {
      this.log.warn({ store: this.store.location, err: (err as Error).message }, 'runtime overrides could not be read: starting with none')
      return
    }
    for (const [name, o] of Object.entries(saved)) this.#put(name, o)
    this.reconcile(config, 'restore')
    if (this.#map.size > 0) this.log.warn({ overrides: this.all() }, 'runtime overrides restored: they differ from the YAML')
    this.emit('change')
  }

  async set (name: string, override: Override): Promise<void> {
    this.#put(name, override)
    this.emit('change')
    await this.persist()
  }

  /** Clears one override; the audit line names `by` and `why`. */
  async clear (name: string, by: string, why: string): Promise<boolean> {
    if (!this.#drop(name, by, why)) return false
    this.emit('change')
    await this.persist()
    return true
  }

  /** Drops overrides whose context was removed or whose YAML changed (the YAML wins), and expired ones. */
  reconcile (config: Config, trigger: string): string[] {
    this.#config = config
    const byName = new Map(config.contexts.map(c => [c.name, c]))
    const cleared: string[] = []
    for (const [name, { override }] of this.#map) {
      const ctx = byName.get(name)
      const why = ctx === undefined
        ? 'context removed from the config'
        : contextFingerprint(ctx) !== override.contextHash
          ? 'the YAML of this context changed: the YAML wins'
          : override.expiresAt !== null && Date.parse(override.expiresAt) <= Date.now() ? 'ttl expired' : null
      if (why !== null && this.#drop(name, trigger, why)) cleared.push(name)
    }
    if (cleared.length > 0 && trigger !== 'restore') {
      this.emit('change')
      void this.persist()
    }
    return cleared
  }

  async persist (): Promise<void> {
    try {
      await this.store.save(this.all())
      if (this.persistError !== null) this.log.info({ store: this.store.location }, 'runtime overrides saved again')
      this.persistError = null
    } catch (err) {
      this.persistError = `${this.store.location}: ${(err as Error).message}`
      this.log.error({ store: this.store.location, err: (err as Error).message }, 'runtime overrides could not be saved: they apply now but will not survive a restart')
    }
  }

  close (): void {
    for (const t of this.#timers.values()) clearTimeout(t)
    this.#timers.clear()
  }

  #put (name: string, override: Override): void {
    this.#map.set(name, { bp: Math.round(override.weight * 100), override })
    this.#arm(name, override)
  }

  #drop (name: string, by: string, why: string): boolean {
    const entry = this.#map.get(name)
    if (entry === undefined) return false
    this.#map.delete(name)
    clearTimeout(this.#timers.get(name))
    this.#timers.delete(name)
    const to = this.#config?.contexts.find(c => c.name === name)?.weight ?? null
    this.log.info({ audit: true, action: 'clear-override', context: name, by, weight: { from: entry.override.weight, to }, reason: why }, `override of ${name} cleared (${why}): weight ${entry.override.weight} → ${to ?? 'context removed'}`)
    return true
  }

  #arm (name: string, override: Override): void {
    clearTimeout(this.#timers.get(name))
    this.#timers.delete(name)
    if (override.expiresAt === null) return
    const remaining = Date.parse(override.expiresAt) - Date.now()
    const timer = setTimeout(() => {
      if (this.get(name) !== override) return
      if (Date.parse(override.expiresAt as string) > Date.now()) this.#arm(name, override)
      else void this.clear(name, 'ttl', 'ttl expired')
    }, Math.max(0, Math.min(remaining, MAX_TIMER)))
    timer.unref()
    this.#timers.set(name, timer)
  }
}
