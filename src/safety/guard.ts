import type { Guard } from '../types.ts'
import type { SideSummary } from './window.ts'

function pct (n: number): string {
  return `${Math.round(n * 10) / 10}%`
}

/**
 * Whether new is worse than legacy beyond the guard's limits, and why, in
 * numbers. Comparing the two sides (not fixed thresholds) keeps an outage of
 * everything behind the proxy from rolling a context back.
 */
export function breach (g: Guard, legacy: SideSummary, next: SideSummary): string | null {
  if (next.requests < g.minRequests) return null
  const delta = next.errorRate - legacy.errorRate
  if (delta > g.maxErrorRateDelta) {
    return `guard: new answered 5xx (or fell back) on ${pct(next.errorRate)} of ${next.requests} requests vs ${pct(legacy.errorRate)} on legacy, ${Math.round(delta * 10) / 10} points above (limit ${g.maxErrorRateDelta})`
  }
  if (legacy.requests >= g.minRequests && legacy.p99 !== null && next.p99 !== null && legacy.p99 > 0 && next.p99 / legacy.p99 > g.maxLatencyRatio) {
    return `guard: new p99 ${next.p99 * 1000} ms vs legacy ${legacy.p99 * 1000} ms, ${Math.round((next.p99 / legacy.p99) * 10) / 10}× (limit ${g.maxLatencyRatio}×)`
  }
  return null
}
