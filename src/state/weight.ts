import type { EffectiveWeight } from '../routing/decide.ts'

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

/** An override's weight (a percentage with at most two decimals) in basis points. */
export function basisPoints (weight: number): number {
  return Math.round(weight * 100)
}
