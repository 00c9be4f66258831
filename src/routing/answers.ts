import type { Rewrite, Upstream } from '../types.ts'

/**
 * How one side's answers are mapped back to the paths the client used: the
 * inverse of `forwardPath`. Built when the table is compiled, and only for a
 * side whose upstream sees other paths than the client (stripPrefix,
 * addPrefix or a path in the upstream's url); null otherwise.
 */
export interface AnswerMap {
  /** What the upstream's paths start with: base path + addPrefix, no trailing '/' ('' for none). */
  readonly upstreamPrefix: string
  /** What the client's paths start with in its place: stripPrefix ('' for none). */
  readonly clientPrefix: string
  /** Lower-cased authorities that name the upstream itself: its host, with and without its default port. */
  readonly upstreamHosts: readonly string[]
}

/** One request's answers to map: its side's map and the hosts the client addressed. */
export interface Answers {
  readonly map: AnswerMap
  /** The Host the client sent, lower-cased ('' for none). */
  readonly host: string
  /** A trusted peer's X-Forwarded-Host (its first entry), lower-cased ('' for none). */
  readonly forwardedHost: string
}

export function answerMap (upstream: Upstream, rewrite: Rewrite | undefined): AnswerMap | null {
  let upstreamPrefix = upstream.basePath + (rewrite?.addPrefix ?? '')
  if (upstreamPrefix.endsWith('/')) upstreamPrefix = upstreamPrefix.slice(0, -1)
  const clientPrefix = rewrite?.stripPrefix ?? ''
  if (upstreamPrefix === clientPrefix) return null
  const host = upstream.host.toLowerCase()
  const port = upstream.origin.startsWith('https:') ? '443' : '80'
  const bare = host.endsWith(`:${port}`) ? host.slice(0, -port.length - 1) : host
  const hosts = /:\d+$/.test(bare) ? [bare] : [bare, `${bare}:${port}`]
  return Object.freeze({ upstreamPrefix, clientPrefix, upstreamHosts: Object.freeze(hosts) })
}

/** The request's Answers, or null when its side's answers need no mapping. */
export function answersFor (map: AnswerMap | null, host: string | undefined, forwardedHost: string | string[] | undefined): Answers | null {
  if (map === null) return null
  const header = Array.isArray(forwardedHost) ? forwardedHost[0] : forwardedHost
  const first = header === undefined ? '' : header.split(',', 1)[0].trim()
  return { map, host: host === undefined ? '' : host.toLowerCase(), forwardedHost: first.toLowerCase() }
}

/** The path matches `prefix` on a segment boundary ('' matches every path). */
function under (path: string, prefix: string): boolean {
  if (prefix.length === 0) return true
  if (!path.startsWith(prefix)) return false
  if (path.length === prefix.length) return true
  const c = path.charCodeAt(prefix.length)
  return c === 0x2f || c === 0x3f || c === 0x23 || c === 0x3b
}

/**
 * An absolute path (query and fragment kept) as the client knows it. Of the
 * two prefixes the longer decides: a path under the client's prefix that is
 * not under a longer upstream prefix was built for the client already (an app
 * that read X-Forwarded-Prefix), and is left as it is; so is one under neither.
 */
export function clientPath (path: string, map: AnswerMap): string {
  const { upstreamPrefix: up, clientPrefix: client } = map
  if (client.length > up.length && under(path, client)) return path
  if (!under(path, up)) return path
  const rest = path.slice(up.length)
  if (client.length > 0) return client + rest
  return rest.charCodeAt(0) === 0x2f ? rest : `/${rest}`
}

const ABSOLUTE = /^(?:https?:)?\/\/([^/?#]*)/i

/**
 * A Location or Content-Location value for the client. A path is mapped; an
 * absolute (or scheme-relative) URL naming the upstream loses its origin and
 * keeps its mapped path, so the upstream's address never reaches the client;
 * one naming the host the client addressed keeps its origin and has its path
 * mapped. Anything else (other hosts, relative references) is left as it is.
 */
export function mapLocation (value: string, a: Answers): string {
  const first = value.charCodeAt(0)
  if (first === 0x2f && value.charCodeAt(1) !== 0x2f) return clientPath(value, a.map)
  const m = ABSOLUTE.exec(value)
  if (m === null) return value
  const authority = m[1].toLowerCase()
  const tail = value.slice(m[0].length)
  const path = tail.charCodeAt(0) === 0x2f ? tail : `/${tail}`
  if (a.map.upstreamHosts.includes(authority)) return clientPath(path, a.map)
  if (authority !== '' && (authority === a.host || authority === a.forwardedHost)) return m[0] + clientPath(path, a.map)
  return value
}

/**
 * A Set-Cookie value for the client: every Path attribute (any case) that is
 * an absolute path is mapped as a Location path is, except that the
 * upstream's `/` under a stripPrefix becomes the bare prefix (`/api`, which
 * also covers `/api` itself). No Path, or one that is not absolute, is left
 * alone: the browser's default path is the client's path already.
 */
export function mapSetCookie (value: string, a: Answers): string {
  if (!/;\s*path\s*=/i.test(value)) return value
  const parts = value.split(';')
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i]
    const eq = part.indexOf('=')
    if (eq === -1 || part.slice(0, eq).trim().toLowerCase() !== 'path') continue
    const raw = part.slice(eq + 1)
    const path = raw.trim()
    if (path.charCodeAt(0) !== 0x2f) continue
    const mapped = path === '/' && a.map.upstreamPrefix === '' ? a.map.clientPrefix : clientPath(path, a.map)
    const start = raw.indexOf(path)
    parts[i] = part.slice(0, eq + 1) + raw.slice(0, start) + mapped + raw.slice(start + path.length)
  }
  return parts.join(';')
}

const REFRESH = /^([^;,]*[;,]\s*url\s*=\s*)(.*)$/i

/**
 * A response header's value for the client: Location, Content-Location,
 * the URL of Refresh (`5; url=/orders`, as nginx's proxy_redirect) and
 * Set-Cookie mapped; others as they are. `lower` is the lower-cased name.
 */
export function mapAnswerHeader (lower: string, value: string, a: Answers): string {
  if (lower === 'location' || lower === 'content-location') return mapLocation(value, a)
  if (lower === 'set-cookie') return mapSetCookie(value, a)
  if (lower === 'refresh') {
    const m = REFRESH.exec(value)
    return m === null ? value : m[1] + mapLocation(m[2], a)
  }
  return value
}
