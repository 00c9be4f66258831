import { segmentText } from '../../config/segments.ts'
import type { Config, Context, Side } from '../../types.ts'
import type { Dormant } from '../../state/store.ts'
import type { ContextStatus } from '../status.ts'
import type { Sample, SideRates, WindowRates } from './rates.ts'

/** Where a context is in its migration, from its config and effective weight. */
export type Stage = 'legacy-only' | 'shadowing' | 'ramping' | 'migrated' | 'retired'

export const STAGES: readonly Stage[] = ['legacy-only', 'shadowing', 'ramping', 'migrated', 'retired']

export interface BoardRow {
  name: string
  stage: Stage
  /** `legacy only`, `shadowing`, `ramping 25%`, `migrated`, `legacy retired`. */
  stageLabel: string
  /** Upstream names (never their addresses). */
  legacy: string
  new: string
  configuredWeight: number
  effectiveWeight: number
  override: ContextStatus['override']
  /** Live numbers per side; null until the window has two snapshots. */
  traffic: Record<Side, SideRates> | null
  /**
   * Null when the context has no `shadow`. `matchRate`: verified matches over all comparisons,
   * noisy ones included; `noisyRate`: those legacy itself does not reproduce. `over`: the last
   * 1,000 comparisons, or the counters since start (workers).
   */
  shadow: { percent: number; matchRate: number | null; noisyRate: number | null; compared: number; over: 'recent' | 'since start' } | null
  guard: NonNullable<ContextStatus['guard']> | null
  /** Null when the context has no `ramp`; `running: false` once an operator or the guard took over. */
  ramp: { running: boolean; step: number | null; of: number; nextAt: string | null } | null
  /** Null when the context has no `segments`; `inForce` is false while a rollback overrides them. */
  segments: { inForce: boolean; pins: string[] } | null
}

export interface BoardData {
  config: { hash: string; loadedAt: string; lastReload: 'ok' | 'rejected'; errors: string[]; reloads: { success: number; failure: number } }
  /** Seconds the live numbers cover; null on the first read. */
  window: number | null
  /** All proxied traffic in the window; `newShare` is the percent of it served by new services (null without traffic). */
  traffic: { rps: number; newRps: number; unmatchedRps: number; newShare: number | null } | null
  /** The mean effective weight across contexts: the share new would serve if every context had the same traffic. */
  meanWeight: number | null
  stages: Record<Stage, number>
  contexts: BoardRow[]
  /** Overrides kept for contexts that are not in the config (GET /status's `dormantOverrides`). */
  dormantOverrides: Dormant[]
}

export interface BoardInput {
  config: Config
  /** `contextStatus()` of the admin API, in config order. */
  status: ContextStatus[]
  loadedAt: Date
  lastError: string[] | null
  latest: Sample
  window: WindowRates | null
  dormant?: Dormant[]
}

/** A context with no traffic in the window. */
const IDLE: SideRates = Object.freeze({ rps: 0, errorRate: null, p99: null, fallbackRate: null })

/**
 * The stage of a context. `legacy: X, new: X` is how the runbook retires the
 * legacy route (no weight or rollback can reach the monolith any more), so
 * that is "legacy retired"; otherwise the effective weight decides, and a
 * running ramp counts as ramping even on a 0 step.
 */
export function stageOf (c: Pick<Context, 'legacy' | 'new' | 'shadow'>, effectiveWeight: number, rampRunning: boolean): { stage: Stage; label: string } {
  if (c.legacy === c.new) return { stage: 'retired', label: 'legacy retired' }
  if (effectiveWeight >= 100) return { stage: 'migrated', label: 'migrated' }
  if (effectiveWeight > 0 || rampRunning) return { stage: 'ramping', label: `ramping ${effectiveWeight}%` }
  if (c.shadow !== null && c.shadow.percent > 0) return { stage: 'shadowing', label: 'shadowing' }
  return { stage: 'legacy-only', label: 'legacy only' }
}

function shadowOf (c: Context, s: ContextStatus, latest: Sample): BoardRow['shadow'] {
  if (c.shadow === null) return null
  if (s.shadow != null) return { percent: c.shadow.percent, matchRate: s.shadow.matchRate, noisyRate: s.shadow.noisyRate, compared: s.shadow.compared, over: 'recent' }
  const totals = latest.shadow.get(c.name) ?? { match: 0, mismatch: 0, noisy: 0 }
  const compared = totals.match + totals.mismatch + totals.noisy
  const share = (n: number): number | null => compared === 0 ? null : n / compared
  return { percent: c.shadow.percent, matchRate: share(totals.match), noisyRate: share(totals.noisy), compared, over: 'since start' }
}

function rampOf (s: ContextStatus): BoardRow['ramp'] {
  if (s.ramp === undefined) return null
  if (s.ramp === null) return { running: false, step: null, of: 0, nextAt: null }
  return { running: true, step: s.ramp.step, of: s.ramp.of, nextAt: s.ramp.nextAt }
}

/** What the board shows: one row per context, in config order, and the totals above them. Pure. */
export function boardData ({ config, status, loadedAt, lastError, latest, window, dormant = [] }: BoardInput): BoardData {
  const byName = new Map(config.contexts.map(c => [c.name, c]))
  const stages = Object.fromEntries(STAGES.map(s => [s, 0])) as Record<Stage, number>
  const contexts = status.map((s): BoardRow => {
    const c = byName.get(s.name) as Context
    const ramp = rampOf(s)
    const { stage, label } = stageOf(c, s.effectiveWeight, ramp?.running === true)
    stages[stage]++
    return {
      name: s.name,
      stage,
      stageLabel: label,
      legacy: c.legacy,
      new: c.new,
      configuredWeight: s.configuredWeight,
      effectiveWeight: s.effectiveWeight,
      override: s.override,
      traffic: window === null ? null : window.contexts.get(s.name) ?? { legacy: IDLE, new: IDLE },
      shadow: shadowOf(c, s, latest),
      guard: s.guard ?? null,
      ramp,
      segments: s.segments === undefined ? null : { inForce: s.segmentsInForce !== false, pins: s.segments.map(x => `${x.label}: ${segmentText(x, false)}`) }
    }
  })
  const unmatched = window?.contexts.get('default')
  return {
    config: {
      hash: config.hash,
      loadedAt: loadedAt.toISOString(),
      lastReload: lastError === null ? 'ok' : 'rejected',
      errors: lastError ?? [],
      reloads: latest.reloads
    },
    window: window?.seconds ?? null,
    traffic: window === null
      ? null
      : {
          rps: window.rps,
          newRps: window.newRps,
          unmatchedRps: unmatched === undefined ? 0 : unmatched.legacy.rps + unmatched.new.rps,
          newShare: window.rps === 0 ? null : (window.newRps / window.rps) * 100
        },
    meanWeight: status.length === 0 ? null : status.reduce((sum, s) => sum + s.effectiveWeight, 0) / status.length,
    stages,
    contexts,
    dormantOverrides: dormant
  }
}
