import type { Rewrite, Upstream } from '../types.ts'

/** The path (and query) sent to `upstream`: its base path, then `addPrefix`,
 * then the canonical `path` without `stripPrefix` when that matches on a
 * segment boundary. Always starts with '/', never joins with '//'. */
export function forwardPath (upstream: Upstream, rewrite: Rewrite | undefined, path: string, query: string): string {
  let rest = path
  let prefix = upstream.basePath
  if (rewrite !== undefined) {
    const strip = rewrite.stripPrefix
    if (strip !== undefined && strip !== '/' && strip.length > 0 && path.startsWith(strip)) {
      if (path.length === strip.length) rest = '/'
      else {
        const c = path.charCodeAt(strip.length)
        if (c === 0x2f) rest = path.slice(strip.length)
        else if (c === 0x3b) rest = '/' + path.slice(strip.length)
      }
    }
    if (rewrite.addPrefix !== undefined) prefix += rewrite.addPrefix
  }
  if (rest.charCodeAt(0) !== 0x2f) rest = '/' + rest
  if (prefix.length === 0) return query.length === 0 ? rest : rest + query
  if (prefix.charCodeAt(prefix.length - 1) === 0x2f) prefix = prefix.slice(0, -1)
  return prefix + rest + query
}

/** The stripPrefix that `forwardPath` removes from `path`, for X-Forwarded-Prefix; '' when it removes none. */
export function strippedPrefix (rewrite: Rewrite | undefined, path: string): string {
  const strip = rewrite?.stripPrefix
  if (strip === undefined || strip === '/' || strip.length === 0 || !path.startsWith(strip)) return ''
  if (path.length === strip.length) return strip
  const c = path.charCodeAt(strip.length)
  return c === 0x2f || c === 0x3b ? strip : ''
}
