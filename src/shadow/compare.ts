/** Comparing a legacy answer with a new one: pure functions, no I/O. */

/** One response as captured for comparison. `body` holds at most the capture limit; `hash` covers all of it. */
export interface Captured {
  status: number
  headers: Record<string, string>
  body: Buffer
  /** true when the body was longer than what was kept. */
  truncated: boolean
  hash: string
}

export interface Difference {
  /** `status`, `header:<name>`, `body` (bytes), or `body.<dotted JSON path>`. */
  path: string
  legacy: unknown
  new: unknown
}

/** A dotted path pattern split in segments; `*` is any key or array element. */
export type FieldPattern = readonly string[]

export function fieldPatterns (paths: readonly string[]): FieldPattern[] {
  return paths.map(p => p.split('.'))
}

export function matchesAny (patterns: readonly FieldPattern[], path: readonly string[]): boolean {
  outer: for (const p of patterns) {
    if (p.length !== path.length) continue
    for (let i = 0; i < p.length; i++) if (p[i] !== '*' && p[i] !== path[i]) continue outer
    return true
  }
  return false
}

const MAX_DIFFERENCES = 20

function kind (v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v
}

/** Structural JSON differences, leaves first-found, at most MAX_DIFFERENCES. */
export function diffJson (a: unknown, b: unknown, ignore: readonly FieldPattern[], path: string[] = [], out: Difference[] = []): Difference[] {
  if (out.length >= MAX_DIFFERENCES || matchesAny(ignore, path)) return out
  const ka = kind(a)
  if (ka !== kind(b)) {
    out.push({ path: ['body', ...path].join('.'), legacy: a, new: b })
    return out
  }
  if (ka === 'array' || ka === 'object') {
    const x = a as Record<string, unknown>
    const y = b as Record<string, unknown>
    const keys = new Set([...Object.keys(x), ...Object.keys(y)])
    for (const k of keys) {
      if (!(k in y)) {
        if (!matchesAny(ignore, [...path, k])) out.push({ path: ['body', ...path, k].join('.'), legacy: x[k], new: undefined })
      } else if (!(k in x)) {
        if (!matchesAny(ignore, [...path, k])) out.push({ path: ['body', ...path, k].join('.'), legacy: undefined, new: y[k] })
      } else diffJson(x[k], y[k], ignore, [...path, k], out)
      if (out.length >= MAX_DIFFERENCES) break
    }
    return out
  }
  if (a !== b) out.push({ path: ['body', ...path].join('.'), legacy: a, new: b })
  return out
}

function parseJson (c: Captured): { ok: true; value: unknown } | { ok: false } {
  if (c.truncated || c.body.length === 0 || !/json/i.test(c.headers['content-type'] ?? '')) return { ok: false }
  try {
    return { ok: true, value: JSON.parse(c.body.toString('utf8')) }
  } catch {
    return { ok: false }
  }
}

function describeBody (c: Captured): string {
  const text = c.body.subarray(0, 120).toString('utf8')
  // eslint-disable-next-line no-control-regex
  const printable = /^[\x09\x0a\x0d\x20-\x7e\u00a0-\uffff]*$/.test(text)
  return `${c.truncated ? 'over' : ''}${c.truncated ? ' ' : ''}${c.body.length} bytes, sha256 ${c.hash.slice(0, 12)}${printable && text.length > 0 ? `: ${JSON.stringify(text)}${c.body.length > 120 ? '…' : ''}` : ''}`
}

/**
 * Where two answers differ: the status, the named headers, and the body —
 * structurally when both are JSON, by bytes (hash) otherwise. Paths matching
 * `ignore` never count.
 */
export function compare (legacy: Captured, next: Captured, headers: readonly string[], ignore: readonly FieldPattern[]): Difference[] {
  const out: Difference[] = []
  if (legacy.status !== next.status) out.push({ path: 'status', legacy: legacy.status, new: next.status })
  for (const h of headers) {
    if (legacy.headers[h] !== next.headers[h] && !matchesAny(ignore, [`header:${h}`])) out.push({ path: `header:${h}`, legacy: legacy.headers[h], new: next.headers[h] })
  }
  const a = parseJson(legacy)
  const b = parseJson(next)
  if (a.ok && b.ok) diffJson(a.value, b.value, ignore, [], out)
  else if (legacy.hash !== next.hash && !matchesAny(ignore, ['body'])) out.push({ path: 'body', legacy: describeBody(legacy), new: describeBody(next) })
  return out
}

/** `body.items.3.price` → `items.*.price`: the form a learned noisy field is kept and matched in. */
export function generalise (path: string): string {
  return path.split('.').map(s => /^\d+$/.test(s) ? '*' : s).join('.').replace(/^body\./, '')
}
