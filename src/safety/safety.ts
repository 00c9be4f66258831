import type { Logger } from 'pino'
import { contextFingerprint, type Overrides } from '../admin/overrides.ts'
import type { Config, Context, Side } from '../types.ts'
import { breach } from './guard.ts'
import { SideWindow, type SideSummary } from './window.ts'

export interface Clock {
  now: () => number
}

export const systemClock: Clock = { now: () => Date.now() }

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
 */
export class Safety {
  readonly #windows = new Map<string, { span: number; window: SideWindow }>()
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
    const keep = new Map<string, { span: number; window: SideWindow }>()
    for (const c of config.contexts) {
      if (c.guard === null) continue
      const old = this.#windows.get(c.name)
      keep.set(c.name, old !== undefined && old.span === c.guard.windowMs ? old : { span: c.guard.windowMs, window: new SideWindow(c.guard.windowMs, this.clock.now) })
    }
    this.#windows.clear()
    for (const [name, w] of keep) this.#windows.set(name, w)
  }

  response (context: string, side: Side, status: number, seconds: number): void {
    if (this.#windows.size === 0 || status < 100) return
    this.#windows.get(context)?.window.record(side, status, seconds)
  }

  fallback (context: string): void {
    this.#windows.get(context)?.window.fallback()
  }

  start (everyMs = 1000): void {
    this.#timer = setInterval(() => { void this.tick() }, everyMs)
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

  #breach (c: Context): string | null {
    const w = this.#windows.get(c.name)
    if (c.guard === null || w === undefined) return null
    return breach(c.guard, w.window.summary('legacy'), w.window.summary('new'))
  }

  async #tick (): Promise<void> {
    const config = this.config()
    for (const c of config.contexts) {
      const reason = this.#breach(c)
      const current = this.overrides.get(c.name)
      const effective = current?.weight ?? c.weight
      if (reason === null || effective === 0 || current?.by === 'guard') continue
      await this.#override(config, c, 0, 'guard', reason)
      const w = this.#windows.get(c.name)
      if (w !== undefined) w.window = new SideWindow(w.span, this.clock.now)
      this.tripped(c.name)
      this.log.warn({ audit: true, action: 'guard-trip', context: c.name, by: 'guard', weight: { from: effective, to: 0 }, reason }, `guard rolled ${c.name} back: ${reason}`)
    }
    for (const c of config.contexts) {
      if (c.ramp === null) continue
      const current = this.overrides.get(c.name)
      if (current !== null && current.ramp === undefined) continue
      const step = current === null ? 0 : current.ramp !== undefined && Date.parse(current.ramp.nextAt) <= this.clock.now() ? current.ramp.step + 1 : -1
      if (step < 0 || step >= c.ramp.steps.length || this.#breach(c) !== null) continue
      const weight = c.ramp.steps[step]
      const last = step === c.ramp.steps.length - 1
      const nextAt = new Date(this.clock.now() + c.ramp.everyMs).toISOString()
      await this.#override(config, c, weight, 'ramp', `ramp step ${step + 1} of ${c.ramp.steps.length}${last ? ' (last)' : `; next at ${nextAt}`}`, { step, nextAt: last ? '9999-12-31T00:00:00.000Z' : nextAt })
      this.log.info({ audit: true, action: 'ramp-step', context: c.name, by: 'ramp', weight: { from: current?.weight ?? c.weight, to: weight }, step: step + 1, of: c.ramp.steps.length }, `ramp ${c.name}: step ${step + 1} of ${c.ramp.steps.length}, weight ${weight}`)
    }
  }

  #override (config: Config, c: Context, weight: number, by: string, reason: string, ramp?: { step: number; nextAt: string }): Promise<void> {
    return this.overrides.set(c.name, {
      weight, reason, by, at: new Date(this.clock.now()).toISOString(), expiresAt: null, configHash: config.hash, contextHash: contextFingerprint(c), ...(ramp === undefined ? {} : { ramp })
    })
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
