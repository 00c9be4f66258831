import type { Logger } from 'pino'
import { contextFingerprint } from '../state/override-rules.ts'
import type { Overrides } from '../state/overrides.ts'
import { StoreUnavailableError } from '../errors.ts'
import type { Override } from '../state/store.ts'
import type { Config, Context, Side } from '../types.ts'
import { breach } from './guard.ts'
import { SideWindow, type SideSummary, type SliceData } from './window.ts'

export interface Clock {
  now: () => number
}

export const systemClock: Clock = { now: () => Date.now() }

/** How long the fleet's decider keeps its lease without renewing it (3 ticks). */
const LEASE_TICKS = 3

interface Watched {
  span: number
  window: SideWindow
  /** The guard override this window was emptied for. */
  trippedAt: string | null
}

export interface SafetyStatus {
  guard?: { tripped: boolean; legacy: SideSummary; new: SideSummary }
  ramp?: { step: number; of: number; weight: number; nextAt: string | null } | null
}

/**
 * Guards and ramps: judges each guarded context's new side against its legacy
 * side over a sliding window and rolls it back through a runtime override when
 * it does worse; raises ramped contexts one step at a time while their guard
 * holds. Both act through the same overrides an operator uses, so /status,
 * the metrics and a restart treat them alike.
 *
 * With a shared store, one replica decides for the fleet: each replica shares
 * its windows through the store every tick, and the one holding the store's
 * lease judges the sum of them, so a guard sees all the traffic and a ramp
 * steps once. While the store is down nobody holds the lease: each replica's
 * guard judges its own traffic and may roll back on its own (the safe
 * direction, sent to the store when it is back); ramps wait.
 */
export class Safety {
  readonly #windows = new Map<string, Watched>()
  #everyMs = 1000
  #ramps = false
  /** Holds the fleet's lease (always, without a shared store). */
  leader = true
  #timer: NodeJS.Timeout | null = null
  #ticking: Promise<void> = Promise.resolve()

  constructor (
    private readonly config: () => Config,
    private readonly overrides: Overrides,
    private readonly log: Logger,
    private readonly tripped: (context: string) => void,
    private readonly clock: Clock = systemClock
  ) {}

  /** Keeps a window per guarded context; one whose window length is unchanged keeps its data. */
  configure (config: Config): void {
    const keep = new Map<string, Watched>()
    for (const c of config.contexts) {
      if (c.guard === null) continue
      const old = this.#windows.get(c.name)
      keep.set(c.name, old !== undefined && old.span === c.guard.windowMs ? old : { span: c.guard.windowMs, window: new SideWindow(c.guard.windowMs, this.clock.now), trippedAt: null })
    }
    this.#windows.clear()
    for (const [name, w] of keep) this.#windows.set(name, w)
    this.#ramps = config.contexts.some(c => c.ramp !== null)
  }

  response (context: string, side: Side, status: number, seconds: number): void {
    if (this.#windows.size === 0 || status < 100) return
    this.#windows.get(context)?.window.record(side, status, seconds)
  }

  fallback (context: string): void {
    this.#windows.get(context)?.window.fallback()
  }

  start (everyMs = 1000): void {
    this.#everyMs = everyMs
    this.#timer = setInterval(() => { this.tick().catch(err => this.log.error({ err: (err as Error).message }, 'guard and ramp evaluation failed; retried at the next tick')) }, everyMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  /** One evaluation of every guard, then every ramp. Runs one at a time. */
  tick (): Promise<void> {
    this.#ticking = this.#ticking.then(() => this.#tick(), () => this.#tick())
    return this.#ticking
  }

  #breach (c: Context, windows: Map<string, SideWindow>): string | null {
    const w = windows.get(c.name)
    if (c.guard === null || w === undefined) return null
    return breach(c.guard, w.summary('legacy'), w.summary('new'))
  }

  /** The windows to judge: this replica's, or the whole fleet's when it holds the lease; null when another replica decides. */
  async #judged (): Promise<Map<string, SideWindow> | null> {
    const local = new Map([...this.#windows].map(([name, w]) => [name, w.window]))
    const shared = this.overrides.coordination
    if (shared === null || !shared.up) return local
    try {
      const data: Record<string, SliceData[]> = {}
      for (const [name, w] of this.#windows) data[name] = w.window.export()
      const ms = this.#everyMs * LEASE_TICKS
      await shared.shareWindows(shared.replica, data, ms)
      this.leader = await shared.lead(shared.replica, ms)
      if (!this.leader) return null
      const all = await shared.gatherWindows([...this.#windows.keys()])
      const fleet = new Map<string, SideWindow>()
      for (const [name, w] of this.#windows) {
        const sum = new SideWindow(w.span, this.clock.now)
        for (const d of all.get(name) ?? []) sum.absorb(d as SliceData[])
        fleet.set(name, sum)
      }
      return fleet
    } catch {
      this.leader = false
      return null
    }
  }

  async #tick (): Promise<void> {
    if (this.#windows.size === 0 && !this.#ramps) return
    const config = this.config()
    for (const [name, w] of this.#windows) {
      // A guard trip, made here or by the fleet's decider, empties the window: judging starts afresh.
      const current = this.overrides.get(name)
      if (current?.by === 'guard' && w.trippedAt !== current.at) {
        w.window = new SideWindow(w.span, this.clock.now)
        w.trippedAt = current.at
      }
    }
    const windows = await this.#judged()
    if (windows === null) return
    const alone = this.overrides.shared && !this.overrides.store.up
    for (const c of config.contexts) {
      const reason = this.#breach(c, windows)
      const current = this.overrides.get(c.name)
      const effective = current?.weight ?? c.weight
      if (reason === null || effective === 0 || current?.by === 'guard') continue
      const trip = this.#make(config, c, 0, 'guard', reason)
      if (alone) this.overrides.setLocally(c.name, trip)
      else if (!await this.#set(c.name, trip)) continue
      const w = this.#windows.get(c.name)
      if (w !== undefined) {
        w.window = new SideWindow(w.span, this.clock.now)
        w.trippedAt = trip.at
      }
      this.tripped(c.name)
      this.log.warn({ audit: true, action: 'guard-trip', context: c.name, by: 'guard', weight: { from: effective, to: 0 }, reason, ...(alone ? { fleet: 'store down: this replica only, sent to the store when it is back' } : {}) }, `guard rolled ${c.name} back: ${reason}`)
    }
    if (alone) return
    for (const c of config.contexts) {
      if (c.ramp === null) continue
      const current = this.overrides.get(c.name)
      if (current !== null && current.ramp === undefined) continue
      const step = current === null ? 0 : current.ramp !== undefined && Date.parse(current.ramp.nextAt) <= this.clock.now() ? current.ramp.step + 1 : -1
      if (step < 0 || step >= c.ramp.steps.length || this.#breach(c, windows) !== null) continue
      const weight = c.ramp.steps[step]
      const last = step === c.ramp.steps.length - 1
      const nextAt = new Date(this.clock.now() + c.ramp.everyMs).toISOString()
      if (!await this.#set(c.name, this.#make(config, c, weight, 'ramp', `ramp step ${step + 1} of ${c.ramp.steps.length}${last ? ' (last)' : `; next at ${nextAt}`}`, { step, nextAt: last ? '9999-12-31T00:00:00.000Z' : nextAt }))) continue
      this.log.info({ audit: true, action: 'ramp-step', context: c.name, by: 'ramp', weight: { from: current?.weight ?? c.weight, to: weight }, step: step + 1, of: c.ramp.steps.length }, `ramp ${c.name}: step ${step + 1} of ${c.ramp.steps.length}, weight ${weight}`)
    }
  }

  #make (config: Config, c: Context, weight: number, by: string, reason: string, ramp?: { step: number; nextAt: string }): Override {
    return { weight, reason, by, at: new Date(this.clock.now()).toISOString(), expiresAt: null, configHash: config.hash, contextHash: contextFingerprint(c), ...(ramp === undefined ? {} : { ramp }) }
  }

  /** False when the shared store could not take it: the next tick tries again. */
  async #set (name: string, override: Override): Promise<boolean> {
    try {
      await this.overrides.set(name, override)
      return true
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err
      return false
    }
  }

  status (c: Context): SafetyStatus {
    const out: SafetyStatus = {}
    const w = this.#windows.get(c.name)
    if (c.guard !== null && w !== undefined) out.guard = { tripped: this.overrides.get(c.name)?.by === 'guard', legacy: w.window.summary('legacy'), new: w.window.summary('new') }
    if (c.ramp !== null) {
      const r = this.overrides.get(c.name)?.ramp
      out.ramp = r === undefined ? null : { step: r.step + 1, of: c.ramp.steps.length, weight: c.ramp.steps[r.step], nextAt: r.step === c.ramp.steps.length - 1 ? null : r.nextAt }
    }
    return out
  }
}
