import type { SafetyStatus } from '../safety/safety.ts'
import type { ShadowStatus, Shadows } from '../shadow/shadows.ts'
import type { Overrides } from '../state/overrides.ts'
import type { Override } from '../state/store.ts'
import { ROLLED_BACK } from '../routing/decide.ts'
import { overrideBp } from '../state/weight.ts'
import type { Config, Context, Segment } from '../types.ts'

export interface ContextStatus {
  name: string
  configuredWeight: number
  effectiveWeight: number
  override: Pick<Override, 'weight' | 'reason' | 'by' | 'at' | 'expiresAt'> | null
  /** Only for contexts with `shadow` in the config. */
  shadow?: ShadowStatus | null
  guard?: SafetyStatus['guard']
  ramp?: SafetyStatus['ramp']
  /** Only for contexts with `segments`; `label` is the metrics label (the name, or the index). */
  segments?: Array<Segment & { label: string }>
  /** False while a rollback sends the segments to legacy too. */
  segmentsInForce?: boolean
}

export function contextStatus (config: Config, overrides: Overrides, shadows: Shadows | null = null, safety: (c: Context) => SafetyStatus = () => ({})): ContextStatus[] {
  return config.contexts.map(c => {
    const o = overrides.get(c.name)
    const status: ContextStatus = {
      name: c.name,
      configuredWeight: c.weight,
      effectiveWeight: o === null ? c.weight : o.weight,
      override: o === null ? null : { weight: o.weight, reason: o.reason, by: o.by, at: o.at, expiresAt: o.expiresAt }
    }
    if (c.segments !== undefined) {
      status.segments = c.segments.map((s, i) => ({ label: s.name ?? String(i), ...s }))
      status.segmentsInForce = o === null || overrideBp(o) !== ROLLED_BACK
    }
    if (c.shadow !== null) status.shadow = shadows === null ? null : shadows.status(c.name, c.shadow)
    return Object.assign(status, safety(c))
  })
}

/** Where overrides live and whether that store works. */
export function stateStatus (overrides: Overrides): { store: string; shared: boolean; up: boolean; lastError: string | null } {
  const { store } = overrides
  return { store: store.location, shared: store.shared, up: store.up, lastError: store.shared ? (store.up ? null : store.lastError) : overrides.persistError }
}
