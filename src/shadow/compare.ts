/** Comparing a legacy answer with a new one: pure functions, no I/O. */

/** One response as captured for comparison. `body` holds at most the capture limit; `hash` and `size` cover all of it. */
export interface Captured {
  status: number
  headers: Record<string, string>
  body: Buffer
  /** true when the body was longer than what was kept (then `body` is empty). */
  truncated: boolean
  size: number
  hash: string
}

export interface Difference {
  /** `status`, `header:<name>`, `body` (the body as a whole), or `body.<dotted JSON path>`. */
  path: string
  legacy: unknown
  new: unknown
}

/** `match`: every comparison held; `noisy`: only the whole body differed, and legacy does not reproduce it either. */
export type Verdict = 'match' | 'mismatch' | 'noisy'

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
const MAX_NOISE = 100

/** `null`, `array`, `object`, or the typeof: `undefined` is a field or header that is absent. */
function kind (v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v
}

const isContainer = (k: string): boolean => k === 'object' || k === 'array'

/**
 * What legacy was seen not to reproduce by itself, learned per field: a header
 * value or a JSON leaf, with the kinds of value it took (`undefined` when
 * absent). A learned field hides a difference only between values of those
 * kinds, so a timestamp that changes does not excuse one that turns into a
 * string or disappears. Whole bodies, statuses and objects or arrays are never
 * learned: noise there would hide everything under it.
 */
export class Noise {
  readonly #fields = new Map<string, Set<string>>()
  #patterns: Array<{ pattern: FieldPattern; kinds: ReadonlySet<string> }> = []

  /**
   * Learns from the differences between two legacy answers; returns whether the
   * body differed as a whole. Answers with different statuses teach nothing: a
   * 503 blip says nothing about the fields of a 200.
   */
  learn (differences: readonly Difference[]): boolean {
    if (differences.some(d => d.path === 'status')) return false
    let whole = false
    for (const d of differences) {
      if (d.path === 'body') whole = true
      const a = kind(d.legacy)
      const b = kind(d.new)
      if (d.path === 'body' || isContainer(a) || isContainer(b)) continue
      const key = d.path.split('.').map(s => /^\d+$/.test(s) ? '*' : s).join('.')
      let kinds = this.#fields.get(key)
      if (kinds === undefined) {
        if (this.#fields.size >= MAX_NOISE) continue
        this.#fields.set(key, kinds = new Set())
      }
      kinds.add(a).add(b)
    }
    this.#patterns = [...this.#fields].map(([key, kinds]) => ({ pattern: key.split('.'), kinds }))
    return whole
  }

  /** `path`: `['header:etag']` or `['body', 'items', '3', 'at']`. */
  hides (path: readonly string[], legacy: unknown, next: unknown): boolean {
    for (const { pattern, kinds } of this.#patterns) {
      if (kinds.has(kind(legacy)) && kinds.has(kind(next)) && matchesAny([pattern], path)) return true
    }
    return false
  }

  /** As shown in /status: `header:etag`, `items.*.updatedAt`. */
  get fields (): string[] {
    return [...this.#fields.keys()].map(k => k.replace(/^body\./, ''))
  }
}

const NO_NOISE = new Noise()

/** Structural JSON differences, leaves first-found, at most MAX_DIFFERENCES. `ignore` hides a path and all under it. */
export function diffJson (a: unknown, b: unknown, ignore: readonly FieldPattern[], noise: Noise = NO_NOISE, path: string[] = [], out: Difference[] = []): Difference[] {
  if (out.length >= MAX_DIFFERENCES || matchesAny(ignore, path)) return out
  const differ = (p: string[], x: unknown, y: unknown): void => {
    if (p.length > 0 && (matchesAny(ignore, p) || noise.hides(['body', ...p], x, y))) return
    out.push({ path: ['body', ...p].join('.'), legacy: x, new: y })
  }
  const ka = kind(a)
  if (ka !== kind(b) || !isContainer(ka)) {
    if (a !== b) differ(path, a, b)
    return out
  }
  const x = a as Record<string, unknown>
  const y = b as Record<string, unknown>
  for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) {
    if (!(k in y) || !(k in x)) differ([...path, k], x[k], y[k])
    else diffJson(x[k], y[k], ignore, noise, [...path, k], out)
    if (out.length >= MAX_DIFFERENCES) break
  }
  return out
}

/** Content types that say nothing about the format: a body in one of them is JSON if it parses as an object or array. */
const GENERIC = new Set(['', 'text/plain', 'application/octet-stream', 'binary/octet-stream'])

function parseJson (c: Captured): { ok: true; value: unknown } | { ok: false } {
  if (c.truncated || c.body.length === 0) return { ok: false }
  const type = (c.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
  const declared = type === 'application/json' || type === 'text/json' || type.endsWith('+json')
  const text = c.body.toString('utf8')
  if (!declared && !(GENERIC.has(type) && /^\s*[[{]/.test(text))) return { ok: false }
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false }
  }
}

function describeBody (c: Captured): string {
  const text = c.body.subarray(0, 120).toString('utf8')
  const printable = /^[\x09\x0a\x0d\x20-\x7e\u00a0-\uffff]*$/.test(text)
  return `${c.size} bytes, ${c.truncated ? 'over the capture limit, ' : ''}sha256 ${c.hash.slice(0, 12)}${printable && text.length > 0 ? `: ${JSON.stringify(text)}${c.body.length > 120 ? '…' : ''}` : ''}`
}

/**
 * Where two answers differ: the status, the named headers, and the body —
 * field by field when both are JSON (declared, or found by parsing under a
 * generic content type), else as a whole (by hash). Fields matching `ignore`,
 * or learned as `noise` for the kinds of value at hand, never count; the
 * status and the whole body always do.
 */
export function compare (legacy: Captured, next: Captured, headers: readonly string[], ignore: readonly FieldPattern[], noise: Noise = NO_NOISE): Difference[] {
  const out: Difference[] = []
  if (legacy.status !== next.status) out.push({ path: 'status', legacy: legacy.status, new: next.status })
  for (const h of headers) {
    const a = legacy.headers[h]
    const b = next.headers[h]
    if (a !== b && !matchesAny(ignore, [`header:${h}`]) && !noise.hides([`header:${h}`], a, b)) out.push({ path: `header:${h}`, legacy: a, new: b })
  }
  const a = parseJson(legacy)
  const b = parseJson(next)
  if (a.ok && b.ok) diffJson(a.value, b.value, ignore, noise, [], out)
  else if (legacy.hash !== next.hash) out.push({ path: 'body', legacy: describeBody(legacy), new: describeBody(next) })
  return out
}

/**
 * The result of a comparison. A difference of the whole body is `noisy` when
 * legacy's own body varies at this endpoint (nothing finer could be compared),
 * else a `mismatch`; any other difference is a `mismatch`.
 */
export function resultOf (differences: readonly Difference[], legacyBodyVaries: boolean): Verdict {
  if (differences.length === 0) return 'match'
  return legacyBodyVaries && differences.every(d => d.path === 'body') ? 'noisy' : 'mismatch'
}

/** Where legacy's body is judged stable or not: the method and the path, with every segment holding a digit as `*`, at most 200 characters. */
export function endpointOf (method: string, path: string): string {
  return `${method} ${path.slice(0, 200).split('/').map(s => /\d/.test(s) ? '*' : s).join('/')}`
}
