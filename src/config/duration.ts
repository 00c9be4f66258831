const UNIT_MS = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as const
/** Units largest first, each at most once: `1h30m`, `1m30s`, `2s500ms`. Same grammar as the schema's DURATION_PATTERN. */
const DURATION = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$/
const UNITS = ['h', 'm', 's', 'ms'] as const

/** Milliseconds for `250ms`, `10s`, `1.5m`, `1h30m`; null for anything else or a duration that is not positive. */
export function parseDuration (s: string): number | null {
  const m = DURATION.exec(s)
  if (!m) return null
  let ms = 0
  for (let i = 0; i < UNITS.length; i++) if (m[i + 1] !== undefined) ms += Number(m[i + 1]) * UNIT_MS[UNITS[i]]
  return ms > 0 && Number.isFinite(ms) ? ms : null
}
