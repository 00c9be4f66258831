/**
 * Rules for the path prefixes of `match.paths` and `rewrite`. They are
 * compared with canonical request paths (routing/path.ts), so anything a
 * canonical path cannot contain would silently never match.
 */

const UNRESERVED = /^[A-Za-z0-9\-._~]$/

/** Why `p` is not a usable path prefix, or null when it is. `what` names it in the message. */
export function pathProblem (what: string, p: string): string | null {
  const q = `${what} "${p}"`
  if (!p.startsWith('/')) return `${q} must start with "/"`
  for (const ch of p) {
    if (ch === '?') return `${q} must not contain "?": paths are matched without the query string`
    if (ch === '#') return `${q} must not contain "#": a fragment never reaches the proxy`
    if (ch === '\\') return `${q} must not contain "\\": requests with a backslash are rejected`
    if (/[\s\p{Cc}]/u.test(ch)) return `${q} must not contain whitespace or control characters`
    if (ch > '~') return `${q} must not contain "${ch}"; write it percent-encoded (${percentEncode(ch)}), as requests are matched`
  }
  for (let i = p.indexOf('%'); i !== -1; i = p.indexOf('%', i + 1)) {
    const hex = p.slice(i + 1, i + 3)
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return `${q} has a malformed percent-escape "%${hex}"`
    const code = parseInt(hex, 16)
    const rejected = code === 0x2f ? 'an encoded "/"' : code === 0x5c ? 'an encoded "\\"' : code < 0x20 || code === 0x7f ? 'an encoded control character' : null
    if (rejected) return `${q} contains %${hex} (${rejected}): requests that carry it are rejected, so it would never match`
    if (UNRESERVED.test(String.fromCharCode(code))) {
      return `${q} spells "${String.fromCharCode(code)}" as %${hex}: requests are matched with it decoded, so it would never match; write "${canonicalEscapes(p)}"`
    }
    if (hex !== hex.toUpperCase()) return `${q} would never match: requests are matched with upper-case escapes; write "${canonicalEscapes(p)}"`
  }
  if (p === '/') return null
  if (p.endsWith('/')) return `${q} must not end with "/" (prefixes match on segment boundaries: "${p.replace(/\/+$/, '') || '/'}" also matches "${p}…")`
  for (const segment of p.slice(1).split('/')) {
    if (segment === '') return `${q} must not contain an empty segment ("//")`
    // `..;x` is a dot segment too (Tomcat reads it so), and requests holding one are rejected.
    const name = segment.split(/;|%3B/i)[0]
    if (name === '.' || name === '..') return `${q} must not contain "${name}" segments`
  }
  return null
}

/** Whether `prefix` covers `path` on a segment boundary (`/api` covers `/api` and `/api/x`, not `/apix`). */
export function coversPath (prefix: string, path: string): boolean {
  return prefix === '/' || path === prefix || path.startsWith(prefix + '/')
}

function percentEncode (ch: string): string {
  return [...Buffer.from(ch, 'utf8')].map(b => '%' + b.toString(16).toUpperCase().padStart(2, '0')).join('')
}

/** The spelling canonicalisation gives: unreserved characters decoded, other escapes in upper case. */
function canonicalEscapes (p: string): string {
  return p.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16))
    return UNRESERVED.test(ch) ? ch : '%' + hex.toUpperCase()
  })
}
