import { randomUUID } from 'node:crypto'
import { BlockList, isIPv6 } from 'node:net'
import { mapAnswerHeader, type Answers } from '../routing/answers.ts'
import type { Upstream } from '../types.ts'

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus those undici refuses to send. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te',
  'trailer', 'upgrade', 'proxy-authorization', 'expect', 'http2-settings'
])

/** The proxy's own request headers: a client can never set them for an upstream. x-request-id is set after the loop. */
const INTERNAL = new Set(['x-strangler-preview', 'x-strangler-shadow', 'x-request-id'])

/** Removes the preview cookie from a Cookie header value ('' when nothing else is left). */
function withoutPreviewCookie (value: string): string {
  if (!value.includes('strangler_preview')) return value
  return value.split(';').filter(pair => pair.split('=', 1)[0].trim() !== 'strangler_preview').join(';').trim()
}

/** Client-supplied forwarding headers, believed only from a trusted peer. */
const FORWARDING = new Set(['forwarded', 'x-real-ip', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix'])

export function trustList (entries: readonly string[]): BlockList | null {
  if (entries.length === 0) return null
  const list = new BlockList()
  for (const entry of entries) {
    const [address, bits] = entry.split('/')
    const family = isIPv6(address) ? 'ipv6' : 'ipv4'
    if (bits === undefined) list.addAddress(address, family)
    else list.addSubnet(address, Number(bits), family)
  }
  return list
}

export function isTrusted (list: BlockList | null, address: string | undefined): boolean {
  if (list === null || address === undefined) return false
  return list.check(address, isIPv6(address) ? 'ipv6' : 'ipv4')
}

/**
 * The request's id: a trusted peer's X-Request-Id (at most 200 characters), else
 * a fresh UUID, so that a client cannot pick the id an operator searches logs by.
 */
export function requestIdOf (incoming: string | string[] | undefined, trusted: boolean): string {
  return trusted && typeof incoming === 'string' && incoming !== '' && incoming.length <= 200 ? incoming : randomUUID()
}

/** `::ffff:10.0.0.1` → `10.0.0.1`: the form X-Forwarded-For readers expect. */
export function clientAddress (address: string | undefined): string {
  if (address === undefined) return ''
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}

/**
 * Names listed in a Connection header: hop-by-hop for this message only. null
 * for the common `keep-alive` / `close`, which are hop-by-hop already: no Set
 * per message for them.
 */
function connectionTokens (value: string): Set<string> | null {
  const v = value.toLowerCase()
  if (v === 'keep-alive' || v === 'close') return null
  const tokens = new Set<string>()
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase()
    if (name !== '') tokens.add(name)
  }
  return tokens
}

/**
 * Headers for the upstream request, as undici's flat [name, value, ...] array.
 * Hop-by-hop headers are dropped; Host and X-Forwarded-* are set by the proxy
 * after the client's headers, so a client's Connection header cannot remove them.
 * With `dropUnderscores`, so are names with "_": WSGI, CGI and PHP read
 * `X_Forwarded_For` as X-Forwarded-For. `prefix` is the stripPrefix the path
 * lost, sent as X-Forwarded-Prefix after a trusted peer's ('' for none).
 */
export function upstreamRequestHeaders (
  raw: readonly string[], host: string, peer: string | undefined, trusted: boolean, preserveHost: boolean, dropUnderscores: boolean, requestId: string, prefix = ''
): string[] {
  const out: string[] = []
  let clientHost = ''
  let xff = ''
  let xfHost = ''
  let xfProto = ''
  let xfPrefix = ''
  let listed: Set<string> | null = null
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 10 && raw[i].toLowerCase() === 'connection') {
      listed = connectionTokens(raw[i + 1])
      break
    }
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase()
    const value = raw[i + 1]
    // Host is the proxy's to set: a client cannot list it in Connection to remove it.
    if (name === 'host') {
      clientHost = value
      continue
    }
    if (HOP_BY_HOP.has(name) || INTERNAL.has(name) || (listed !== null && listed.has(name)) || (dropUnderscores && name.includes('_'))) continue
    if (name === 'cookie') {
      const kept = withoutPreviewCookie(value)
      if (kept !== '') out.push(raw[i], kept)
      continue
    }
    if (FORWARDING.has(name)) {
      if (!trusted) continue
      if (name === 'x-forwarded-for') { xff = xff === '' ? value : `${xff}, ${value}`; continue }
      if (name === 'x-forwarded-host') { if (xfHost === '') xfHost = value; continue }
      if (name === 'x-forwarded-proto') { if (xfProto === '') xfProto = value; continue }
      if (name === 'x-forwarded-prefix' && prefix !== '') { xfPrefix += joinedPrefix(value); continue }
    }
    out.push(raw[i], value)
  }
  const address = clientAddress(peer)
  out.push(
    'host', preserveHost && clientHost !== '' ? clientHost : host,
    'x-forwarded-for', xff === '' ? address : `${xff}, ${address}`
  )
  // An HTTP/1.0 request may have no Host: then there is no X-Forwarded-Host to send, not an empty one.
  if (xfHost !== '' || clientHost !== '') out.push('x-forwarded-host', xfHost === '' ? clientHost : xfHost)
  out.push('x-forwarded-proto', xfProto === '' ? 'http' : xfProto)
  if (prefix !== '') out.push('x-forwarded-prefix', xfPrefix + prefix)
  out.push('x-request-id', requestId)
  return out
}

/** The Host an upstream gets: its own, or the client's with preserveHost (when the client sent one). */
export function upstreamHost (upstream: Upstream, clientHost: string | undefined): string {
  return upstream.preserveHost && clientHost !== undefined && clientHost !== '' ? clientHost : upstream.host
}

/**
 * Another upstream's copy of a request's upstream headers: they are built once
 * per request (upstreamRequestHeaders) and differ between upstreams in Host,
 * the one `host` name among them (the client's Host is never copied), and in
 * X-Forwarded-Prefix when this upstream's path lost another prefix: `prefix`
 * is then what it lost ('' for nothing), `peerPrefix` a trusted peer's
 * X-Forwarded-Prefix ('' for none); null keeps the request's. The copy is the
 * caller's to add to (tracing, shadowing).
 */
export function withHost (headers: readonly string[], host: string, prefix: string | null = null, peerPrefix = ''): string[] {
  const out = headers.slice()
  for (let i = out.length - 2; i >= 0; i -= 2) {
    if (out[i] === 'host') {
      out[i + 1] = host
      break
    }
  }
  if (prefix === null) return out
  for (let i = out.length - 2; i >= 0; i -= 2) {
    if (out[i].length === 18 && out[i].toLowerCase() === 'x-forwarded-prefix') out.splice(i, 2)
  }
  const value = prefix !== '' ? joinedPrefix(peerPrefix) + prefix : peerPrefix
  // Where upstreamRequestHeaders puts it: before x-request-id (the last header unless a trace header follows).
  if (value !== '') out.splice(out.length - 2, 0, 'x-forwarded-prefix', value)
  return out
}

/**
 * A trusted X-Forwarded-Prefix list as one path, as Spring reads it
 * (`/shop/, /eu` is `/shop/eu`): ours goes after it as a single value, which
 * Werkzeug's ProxyFix and ASP.NET, reading only the last entry, also understand.
 */
function joinedPrefix (value: string): string {
  let out = ''
  for (const entry of value.split(',')) {
    const p = entry.trim().replace(/\/+$/, '')
    if (p !== '') out += p.charCodeAt(0) === 0x2f ? p : `/${p}`
  }
  return out
}

/**
 * Response headers for the client, hop-by-hop ones removed; with `answers`,
 * Location, Content-Location and Set-Cookie mapped back to the client's paths.
 * undici hands them over as raw bytes; Node's client as strings.
 */
export function clientResponseHeaders (raw: readonly Buffer[] | readonly string[], answers: Answers | null = null): string[] {
  const out: string[] = []
  let connection: string | null = null
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString('latin1')
    const lower = name.toLowerCase()
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection' && connection === null) connection = raw[i + 1].toString('latin1')
      continue
    }
    const value = raw[i + 1].toString('latin1')
    out.push(name, answers === null ? value : mapAnswerHeader(lower, value, answers))
  }
  const listed = connection === null ? null : connectionTokens(connection)
  return listed === null ? out : withoutListed(out, listed)
}

function withoutListed (headers: readonly string[], listed: Set<string>): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    if (!listed.has(headers[i].toLowerCase())) out.push(headers[i], headers[i + 1])
  }
  return out
}
