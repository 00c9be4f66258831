const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/

/** Milliseconds for `250ms`, `10s`, `1.5m`, `1h`; null for anything else or a duration that is not positive. */
export function parseDuration (s: string): number | null {
  const m = DURATION.exec(s)
  if (!m) return null
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]
  return ms > 0 && Number.isFinite(ms) ? ms : null
}
