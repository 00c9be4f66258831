/** Request-target canonicalisation: what is matched is exactly what is
 * forwarded, so every spelling that could mean something else upstream
 * (dot segments, encoded separators, control bytes) is refused here. */

export interface CanonicalUrl {
  /** Canonical path: starts with '/', no '//', no dot segments. */
  path: string
  /** Everything from the first '?' on, verbatim; '' when there is none. */
  query: string
}

const HEX = '0123456789ABCDEF'
const SLASH = 0x2f
const BACKSLASH = 0x5c
const PERCENT = 0x25
const HASH = 0x23
const SEMICOLON = 0x3b
const DOT = 0x2e

function hexValue (c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x41 && c <= 0x46) return c - 0x37
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  return -1
}

function isUnreserved (c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5f ||
    c === 0x7e
  )
}

function percentEncoded (byte: number): string {
  return '%' + HEX[byte >> 4] + HEX[byte & 15]
}

/**
 * Splits Node's `req.url` (one latin1 char per byte) into a canonical path and
 * the verbatim query, or returns null when the request must get 400 bad_path.
 * A char above 0xFF cannot come from the wire and is refused: callers holding
 * a JS string (the CLI) pass `Buffer.from(url).toString('latin1')`.
 * Unchanged paths are returned as a slice of the input, never rebuilt.
 */
export function canonicalize (rawUrl: string): CanonicalUrl | null {
  if (rawUrl.charCodeAt(0) !== SLASH) return null
  let end = rawUrl.indexOf('?')
  if (end === -1) end = rawUrl.length

  // `out` holds the rebuilt path up to `copied`; runs that need no change are
  // appended as one slice, so a clean path is never rebuilt at all.
  let out = ''
  let copied = 0
  let rebuilt = false
  // The current segment, up to its first ';' (raw or %3B): its length and
  // whether it is only dots, to refuse '.' and '..' (also '..;x', Tomcat).
  let segLength = 0
  let segDots = true
  let inParams = false

  for (let i = 1; i < end; i++) {
    let c = rawUrl.charCodeAt(i)
    if (c === SLASH) {
      if (segDots && (segLength === 1 || segLength === 2)) return null
      segLength = 0
      segDots = true
      inParams = false
      if (rawUrl.charCodeAt(i - 1) === SLASH) {
        out += rawUrl.slice(copied, i)
        copied = i + 1
        rebuilt = true
      }
      continue
    }
    if (c === PERCENT) {
      if (i + 2 >= end) return null
      const hi = hexValue(rawUrl.charCodeAt(i + 1))
      const lo = hexValue(rawUrl.charCodeAt(i + 2))
      if (hi < 0 || lo < 0) return null
      c = (hi << 4) | lo
      if (c < 0x20 || c === 0x7f || c === SLASH || c === BACKSLASH) return null
      if (isUnreserved(c)) {
        out += rawUrl.slice(copied, i) + String.fromCharCode(c)
        copied = i + 3
        rebuilt = true
      } else if (rawUrl.charCodeAt(i + 1) > 0x46 || rawUrl.charCodeAt(i + 2) > 0x46) {
        // lower-case hex digit
        out += rawUrl.slice(copied, i) + percentEncoded(c)
        copied = i + 3
        rebuilt = true
      }
      i += 2
    } else if (c < 0x20 || c === 0x7f || c === BACKSLASH || c === HASH || c > 0xff) {
      return null
    } else if (c > 0x7e || c === 0x20) {
      out += rawUrl.slice(copied, i) + percentEncoded(c)
      copied = i + 1
      rebuilt = true
    }
    // `c` is now the decoded char: a kept %3B ends the segment's name too.
    if (inParams) continue
    if (c === SEMICOLON) inParams = true
    else {
      segLength++
      if (c !== DOT) segDots = false
    }
  }
  if (segDots && (segLength === 1 || segLength === 2)) return null

  const path = rebuilt ? out + rawUrl.slice(copied, end) : end === rawUrl.length ? rawUrl : rawUrl.slice(0, end)
  return { path, query: end === rawUrl.length ? '' : rawUrl.slice(end) }
}
