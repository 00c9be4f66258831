import type { IncomingMessage } from 'node:http'

/** What admit reads of a request (an IncomingMessage, or a literal in a test). */
export type AdmitRequest = Pick<IncomingMessage, 'httpVersionMajor' | 'httpVersionMinor' | 'headers' | 'rawHeaders' | 'url'>

/** HTTP/1.1 needs exactly one Host (RFC 9112 §3.2); HTTP/1.0 at most one. */
function hasOneHost (req: AdmitRequest): boolean {
  const raw = req.rawHeaders
  let hosts = 0
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 4 && raw[i].toLowerCase() === 'host') hosts++
  }
  return hosts === 1 || (hosts === 0 && req.httpVersionMinor === 0)
}

const ABSOLUTE_FORM = /^https?:\/\/([^/?#@\s]+)([/?][^#]*)?$/i

/**
 * An absolute-form request target (`GET http://shop.example.com/api HTTP/1.1`)
 * made origin-form, as RFC 9112 §3.2.2 has a server do: the target's authority
 * replaces the Host header, and its path and query are what is routed and
 * forwarded. Any other target that does not start with `/` is left as it is,
 * and routing refuses it (400).
 */
export function toOriginForm (req: Pick<AdmitRequest, 'url' | 'rawHeaders' | 'headers'>): void {
  if ((req.url as string).charCodeAt(0) === 47) return
  const m = ABSOLUTE_FORM.exec(req.url as string)
  if (m === null) return
  const authority = m[1]
  const rest = m[2] ?? '/'
  req.url = rest.charCodeAt(0) === 63 ? `/${rest}` : rest
  const raw = req.rawHeaders
  let found = false
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 4 && raw[i].toLowerCase() === 'host') {
      raw[i + 1] = authority
      found = true
    }
  }
  if (!found) raw.push('Host', authority)
  req.headers.host = authority
}

/** Why a request is refused before it is routed: the `reason` of strangler_rejected_requests_total. */
export type Refusal = 'bad_request' | 'body_too_large'

/**
 * The first stage: is this a request the proxy takes at all? Its framing (HTTP/1,
 * one Host, no transfer coding but chunked) and its announced body size against
 * `maxBodyBytes` (0: no limit). An absolute-form target is made origin-form on
 * the way. null: admitted.
 */
export function admit (req: AdmitRequest, maxBodyBytes: number): Refusal | null {
  if (req.httpVersionMajor !== 1 || !hasOneHost(req)) return 'bad_request'
  // Node reads `gzip, chunked` as chunked: the coding would be lost on the way. 400 like every other framing attack (nginx: 501).
  const te = req.headers['transfer-encoding']
  if (te !== undefined && te.toLowerCase() !== 'chunked') return 'bad_request'
  if (maxBodyBytes > 0 && Number(req.headers['content-length']) > maxBodyBytes) return 'body_too_large'
  toOriginForm(req)
  return null
}
