import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import type { EffectiveWeight } from '../routing/decide.ts'
import type { Config, Context } from '../types.ts'
import type { Coordination } from './coordination.ts'
import { Expiries } from './expiry.ts'
import { contextFingerprint, DORMANT, notInForce, UNSAVED } from './override-rules.ts'
import type { AnchorMode, Dormant, Entry, Override, OverrideMap, OverrideStore, SharedStore } from './store.ts'
import { effectiveWeight, overrideBp } from './weight.ts'

/**
 * Runtime overrides on top of the YAML. The proxy reads them through `weightOf`
 * on every request, so a change applies to the very next one. Emits 'change'
 * after every change of what is in force, whatever made it (API, TTL, config
 * change, another replica).
 *
 * An override is in force while its context exists, it has not expired, and
 * the YAML does not win over it. One whose context is absent is kept, dormant
 * (a file may be caught half-written, or a context moved out and back), and
 * applies again when the context comes back with the same YAML. The YAML wins
 * over an override made under another version of the context's YAML — with a local file, always; with a
 * shared store, when the override is older than the moment the fleet first
 * ran this replica's YAML of the context (its anchor). So a rollback made
 * through a replica that still runs the old YAML during a config rollout holds
 * on the replicas that already run the new one, and every replica ends in the
 * same state. Emits 'dropped' (name) once an override that lapsed or lost to
 * the YAML has been removed from a local store (or failed to be).
 */
export class Overrides extends EventEmitter {
  /** The latest entry per context, as the store has it (or as made here while a shared store was down). */
  readonly #known = new Map<string, Entry>()
  /** The overrides in force, and their weights in basis points (what the proxy reads). */
  readonly #active = new Map<string, Override>()
  readonly #weights = new Map<string, number>()
  /** Shared store: the fleet version at which this replica's YAML of each context first ran. */
  readonly #anchors = new Map<string, number>()
  /** Shared store: guard trips made while it was down, by context, with the version they replace. */
  readonly #unsent = new Map<string, number>()
  readonly #expiries = new Expiries((name, o) => { if (this.#known.get(name)?.override === o) this.#recompute('ttl') })
  /** The dormant overrides, by context. */
  readonly #asleep = new Map<string, Override>()
  /** The writes of overrides dropped by a recompute. */
  #dropping: Promise<void> = Promise.resolve()
  /** The last error writing a local store, or null once a write succeeds. */
  persistError: string | null = null
  #config: Config | null = null
  #byName = new Map<string, Context>()
  #resyncing: Promise<void> = Promise.resolve()

  constructor (readonly store: OverrideStore, private readonly log: Logger) {
    super()
  }

  get shared (): boolean {
    return this.store.shared
  }

  readonly weightOf: EffectiveWeight = effectiveWeight(this.#weights)

  /** The fleet's lease, windows and acknowledgements, with a shared store; null with a local one. */
  get coordination (): Coordination | null {
    return this.#shared()
  }

  get (name: string): Override | null {
    return this.#active.get(name) ?? null
  }

  all (): OverrideMap {
    return Object.fromEntries(this.#active)
  }

  /** The weights in force in basis points, by context: what workers compute the effective weight from. */
  weights (): Record<string, number> {
    return Object.fromEntries(this.#weights)
  }

  /** Overrides kept while their context is absent from the config, by context name. */
  dormant (): Dormant[] {
    const out: Dormant[] = []
    for (const [name, o] of this.#asleep) out.push({ context: name, weight: o.weight, reason: o.reason, by: o.by, at: o.at, expiresAt: o.expiresAt })
    return out.sort((a, b) => a.context < b.context ? -1 : 1)
  }

  /**
   * Loads the saved overrides that still apply to `config`. A local store that
   * cannot be read starts empty, with a warning; a shared store is waited for
   * (the replica is not started, so not ready, until it has the fleet's state).
   */
  async restore (config: Config): Promise<void> {
    this.#config = config
    this.#setConfig(config)
    const shared = this.#shared()
    let saved: Map<string, Entry>
    if (shared !== null) {
      shared.on('entry', (name: string, entry: Entry) => this.receive(name, entry))
      saved = await this.#first(shared, config)
      shared.on('up', () => { void this.resync() })
    } else {
      try {
        saved = await this.store.load()
      } catch (err) {
        this.log.warn({ store: this.store.location, err: (err as Error).message }, 'runtime overrides could not be read: starting with none')
        return
      }
    }
    for (const [name, entry] of saved) this.#learn(name, entry)
    this.#recompute('restore')
    if (this.#active.size > 0) this.log.warn({ overrides: this.all() }, 'runtime overrides restored: they differ from the YAML')
    if (this.#asleep.size > 0) this.log.warn({ dormant: this.dormant() }, 'dormant overrides restored: they apply again if their contexts come back with the same YAML')
  }

  /** The fleet's state at start: waits for the store, and again each time it drops before everything was read. */
  async #first (shared: SharedStore, config: Config): Promise<Map<string, Entry>> {
    for (;;) {
      await shared.connect()
      try {
        await this.#anchor(config.contexts, 'start')
        return await shared.load()
      } catch (err) {
        if (shared.up) throw err
        this.log.warn({ store: shared.location, err: (err as Error).message }, 'the shared state store dropped while the overrides were read: waiting for it')
      }
    }
  }

  /** Applies a change pushed by the shared store; an older or repeated one is ignored. */
  receive (name: string, entry: Entry): void {
    if (this.#learn(name, entry)) {
      this.#unsent.delete(name)
      this.#recompute('fleet')
    }
    this.#shared()?.ack(entry.version)
  }

  /**
   * Records an override. With a shared store it applies only once the store
   * has it (rejects with StoreUnavailableError otherwise), and resolves when
   * every live replica confirmed it, or with a warning naming those that did not.
   */
  set (name: string, override: Override): Promise<string | null> {
    return this.#write(name, override, 'admin', '')
  }

  /** Clears one override, like `set`; the audit line names `by` and `why`. */
  clear (name: string, by: string, why: string): Promise<string | null> {
    return this.#write(name, null, by, why)
  }

  /**
   * A guard trip while the shared store is down: it applies here at once (the
   * safe direction) and is sent to the store when it is back, unless another
   * change was made there meanwhile.
   */
  setLocally (name: string, override: Override): void {
    const base = this.#known.get(name)?.version ?? 0
    this.#unsent.set(name, base)
    this.#known.set(name, { version: base + 0.5, override })
    this.#recompute('fleet')
  }

  async #write (name: string, override: Override | null, by: string, why: string): Promise<string | null> {
    const shared = this.#shared()
    if (shared !== null) {
      const version = await shared.write(name, override) as number
      if (this.#learn(name, { version, override })) this.#unsent.delete(name)
      this.#recompute(by, why)
      return await shared.confirm(version)
    }
    const version = (this.#known.get(name)?.version ?? 0) + 1
    this.#learn(name, { version, override })
    this.#recompute(by, why)
    await this.#persist(name, override, override === null ? 'clear' : 'set')
    return null
  }

  /**
   * Call before a new config goes live, with the contexts whose YAML changed:
   * a shared store records when the fleet first ran their new YAML. When it is
   * down the new YAML wins over every override of those contexts until it is
   * back (resync).
   */
  async prepare (before: Config, after: Config): Promise<void> {
    if (!this.shared) return
    const old = new Map(before.contexts.map(c => [c.name, c]))
    const changed = after.contexts.filter(c => { const o = old.get(c.name); return o === undefined || contextFingerprint(o) !== contextFingerprint(c) })
    try {
      await this.#anchor(changed, 'change')
    } catch {
      for (const c of changed) this.#anchors.delete(c.name)
    }
  }

  /**
   * Re-evaluates what is in force under `config`; resolves, once the overrides
   * it dropped are saved (or failed to be), with the contexts whose override stopped.
   */
  async reconcile (config: Config, trigger: string): Promise<string[]> {
    this.#setConfig(config)
    const stopped = this.#recompute(trigger)
    await this.#dropping
    return stopped
  }

  /**
   * After the shared store (re)connects: changes may have been missed, or
   * Redis may have lost its data. Records this replica's anchors, sends guard
   * trips made while it was down, takes every newer entry, and puts back the
   * entries it knows that the store lacks.
   */
  resync (): Promise<void> {
    this.#resyncing = this.#resyncing.then(() => this.#resync()).catch(err => {
      this.log.warn({ store: this.store.location, err: (err as Error).message }, 'resynchronising with the shared state store failed; it is retried at the next reconnection')
    })
    return this.#resyncing
  }

  async #resync (): Promise<void> {
    const shared = this.#shared()
    if (shared === null || this.#config === null) return
    const contexts = this.#config.contexts
    await this.#anchor(contexts, c => this.#anchors.get(c.name) ?? 'change')
    for (const [name, base] of this.#unsent) {
      const override = this.#known.get(name)?.override ?? null
      const version = await shared.write(name, override, base)
      this.#unsent.delete(name)
      if (version !== null) this.#learn(name, { version, override })
    }
    const stored = await shared.load()
    for (const [name, entry] of stored) this.#learn(name, entry)
    const seeded: string[] = []
    for (const [name, entry] of this.#known) {
      if (!Number.isInteger(entry.version) || (stored.get(name)?.version ?? 0) >= entry.version) continue
      await shared.seed(name, entry)
      seeded.push(name)
    }
    this.#recompute('resync')
    this.log.info({ store: shared.location, overrides: this.#active.size, putBack: seeded }, 'resynchronised with the shared state store')
  }

  async #anchor (contexts: Context[], mode: AnchorMode | ((c: Context) => AnchorMode)): Promise<void> {
    const shared = this.#shared()
    if (shared === null || contexts.length === 0) return
    const items = contexts.map(c => [c.name, contextFingerprint(c), typeof mode === 'function' ? mode(c) : mode] as [string, string, AnchorMode])
    const versions = await shared.anchors(items)
    contexts.forEach((c, i) => this.#anchors.set(c.name, versions[i]))
  }

  #setConfig (config: Config): void {
    this.#config = config
    this.#byName = new Map(config.contexts.map(c => [c.name, c]))
  }

  /** Keeps `entry` when it is newer than the one held; true when kept. */
  #learn (name: string, entry: Entry): boolean {
    const held = this.#known.get(name)
    if (held !== undefined && held.version >= entry.version) return false
    if (entry.override === null && !this.shared) this.#known.delete(name)
    else this.#known.set(name, entry)
    return true
  }

  #recompute (by: string, why = ''): string[] {
    if (this.#config === null) return []
    const stopped: string[] = []
    const dropped: string[] = []
    let changed = false
    for (const [name, entry] of this.#known) {
      const reason = notInForce(entry, this.#byName.get(name), this.#anchors.get(name), Date.now())
      const held = this.#active.get(name)
      const o = entry.override as Override
      if (reason === null) {
        if (held === o) continue
        this.#active.set(name, o)
        this.#weights.set(name, overrideBp(o))
        this.#expiries.arm(name, o)
        if (by === 'fleet' || by === 'resync') this.log.info({ context: name, weight: o.weight, by: o.by, reason: o.reason }, `override of ${name} applied from the shared store`)
        else if (this.#asleep.has(name)) this.log.info({ audit: true, action: 'resume-override', context: name, by, weight: o.weight, reason: o.reason }, `dormant override of ${name} applies again: its context is back with the same YAML`)
        this.#asleep.delete(name)
        changed = true
      } else if (reason === DORMANT) {
        if (this.#asleep.get(name) === o) continue
        if (!this.#asleep.has(name)) this.log.info({ audit: true, action: 'dormant-override', context: name, by, weight: o.weight, reason: o.reason }, `override of ${name} kept, dormant: its context is not in the config; it applies again if the context comes back with the same YAML`)
        this.#asleep.set(name, o)
        this.#expiries.arm(name, o)
        if (held === undefined) continue
        this.#active.delete(name)
        this.#weights.delete(name)
        stopped.push(name)
        changed = true
      } else {
        const ended = held ?? this.#asleep.get(name)
        this.#asleep.delete(name)
        if (!this.shared && reason !== 'cleared') {
          this.#known.delete(name)
          if (by !== 'restore') dropped.push(name)
        }
        if (ended !== undefined) this.#stop(name, ended, by, reason === 'cleared' ? why || reason : reason)
        if (held === undefined) continue
        stopped.push(name)
        changed = true
      }
    }
    if (dropped.length > 0) this.#dropping = Promise.all([this.#dropping, ...dropped.map(name => this.#persist(name, null, 'drop').then(() => this.emit('dropped', name)))]).then(() => {})
    for (const [name, slept] of this.#asleep) {
      if (this.#known.has(name)) continue
      this.#asleep.delete(name)
      this.#stop(name, slept, by, why || 'cleared')
    }
    for (const [name, held] of this.#active) {
      if (this.#known.has(name)) continue
      this.#stop(name, held, by, why || 'cleared')
      stopped.push(name)
      changed = true
    }
    if (changed) this.emit('change')
    return stopped
  }

  /** Logs the end of an override (in force or dormant) and forgets it. */
  #stop (name: string, override: Override, by: string, why: string): void {
    this.#active.delete(name)
    this.#weights.delete(name)
    this.#expiries.clear(name)
    const to = this.#config?.contexts.find(c => c.name === name)?.weight ?? null
    this.log.info({ audit: true, action: 'clear-override', context: name, by, weight: { from: override.weight, to }, reason: why }, `override of ${name} cleared (${why}): weight ${override.weight} → ${to ?? 'context removed'}`)
  }

  /** Saves one change to a local store; a failure is logged, kept in `persistError` and shown in /status. */
  async #persist (name: string, override: Override | null, change: 'set' | 'clear' | 'drop'): Promise<void> {
    try {
      await this.store.write(name, override)
      if (this.persistError !== null) this.log.info({ store: this.store.location }, 'runtime overrides saved again')
      this.persistError = null
    } catch (err) {
      this.persistError = `${this.store.location}: ${(err as Error).message}`
      this.log.error({ store: this.store.location, err: (err as Error).message, context: name, change }, UNSAVED[change](name))
    }
  }

  #shared (): SharedStore | null {
    return this.store.shared ? this.store : null
  }

  async close (): Promise<void> {
    this.#expiries.close()
    await this.store.close()
  }
}
