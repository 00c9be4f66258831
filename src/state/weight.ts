import { ROLLED_BACK, type EffectiveWeight } from '../routing/decide.ts'

/**
 * The weight a request sees, in basis points: the override's where a context
 * has one in force (`overridden`, by context name), else the YAML's. The proxy
 * calls it per request, in this process (over Overrides' map) and in each
 * worker (over the map the primary sends), so both decide the same way.
 */
export function effectiveWeight (overridden: ReadonlyMap<string, number>): EffectiveWeight {
  return ctx => {
    if (overridden.size === 0) return ctx.weightBp
    return overridden.get(ctx.name) ?? ctx.weightBp
  }
}

/**
 * The effective weight an override puts in force, in basis points. An
 * override to 0 by an operator (rollback, or a weight of 0) or by a guard is a
 * rollback (ROLLED_BACK); a ramp's step at 0 is not: a ramp schedules the
 * weight, the share of the traffic no segment pins, and the segments stay in
 * force through it.
 */
export function overrideBp (o: { weight: number; ramp?: unknown }): number {
  return o.weight === 0 && o.ramp === undefined ? ROLLED_BACK : Math.round(o.weight * 100)
}
