import type { Segment, Side } from '../types.ts'
import { cookieOf, headerValue, nonEmpty, type HeaderBag } from './sticky.ts'

/** One segment ready for the hot path. */
export interface CompiledSegment {
  readonly kind: 'header' | 'cookie' | 'query'
  /** Header name lower-cased; cookie and query names as written. */
  readonly key: string
  readonly values: ReadonlySet<string>
  readonly side: Side
  /** Position in the context's `segments`. */
  readonly index: number
  /** The `segment` metrics label: the config's `name`, or the index. */
  readonly label: string
}

export function compileSegments (segments: readonly Segment[] | undefined): readonly CompiledSegment[] | null {
  if (segments === undefined || segments.length === 0) return null
  return Object.freeze(segments.map((s, index) => {
    const kind = s.header !== undefined ? 'header' : s.cookie !== undefined ? 'cookie' : 'query'
    return Object.freeze({ kind, key: (s.header ?? s.cookie ?? s.query) as string, values: new Set(s.values), side: s.side, index, label: s.name ?? String(index) })
  }))
}

/**
 * The first segment the request matches, or null. Each segment reads only its
 * own header, cookie or query parameter, so a context without cookie segments
 * never parses the Cookie header, nor one without query segments the query.
 */
export function matchSegment (segments: readonly CompiledSegment[], headers: HeaderBag, query: string): CompiledSegment | null {
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]
    const value = s.kind === 'header' ? headerValue(headers, s.key) : s.kind === 'cookie' ? cookieOf(headers, s.key) : queryValue(query, s.key)
    if (value !== undefined && s.values.has(value)) return s
  }
  return null
}

/**
 * The percent-decoded value of the first parameter called `name` (itself
 * compared decoded) in `query` ('' or '?…', as received). `+` stays a plus
 * (RFC 3986; only forms read it as a space). A parameter whose encoding is
 * broken matches nothing.
 */
export function queryValue (query: string, name: string): string | undefined {
  const len = query.length
  let i = 1
  while (i < len) {
    let end = query.indexOf('&', i)
    if (end === -1) end = len
    let eq = query.indexOf('=', i)
    if (eq === -1 || eq > end) eq = end
    if (eq - i === name.length ? query.startsWith(name, i) : eq > i && decoded(query.slice(i, eq)) === name) {
      return eq === end ? undefined : decoded(query.slice(eq + 1, end))
    }
    i = end + 1
  }
  return undefined
}

function decoded (raw: string): string | undefined {
  // Bytes past ASCII reach the proxy one per char (latin1): read them as UTF-8 first, as headers are.
  const text = nonEmpty(raw)
  if (text === undefined || !text.includes('%')) return text
  try {
    return decodeURIComponent(text)
  } catch {
    return undefined
  }
}
