/** What the proxy needs from an upstream `url`. */
export interface UpstreamAddress {
  origin: string
  basePath: string
  host: string
}

/** Splits an upstream url, or says why it cannot be used. Messages never echo the url: it may hold secrets. */
export function parseUpstreamUrl (raw: string): UpstreamAddress | string {
  if (/[\s\p{Cc}]/u.test(raw)) return 'url must not contain whitespace or control characters'
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) return 'url must start with http:// or https://, such as http://orders.internal:3000'
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'url is not a valid URL; write it as http://host:port or https://host/base-path'
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `url must use http or https, not ${url.protocol.slice(0, -1)}`
  const m = /^https?:\/\/([^/?#]*)/i.exec(raw)
  if (!m || url.hostname === '') return 'url is not a valid URL; write it as http://host:port or https://host/base-path'
  if (url.username !== '' || url.password !== '' || m[1].includes('@')) return 'url must not contain credentials (user:password@)'
  if (raw.includes('?') || raw.includes('#')) return 'url must not have a query (?) or fragment (#)'
  // URL drops a default port; keep it when written, as the Host header the upstream expects may carry it.
  const written = /:(\d+)$/.exec(m[1])?.[1]
  const port = url.port || (written === undefined ? '' : String(Number(written)))
  const host = port ? `${url.hostname}:${port}` : url.hostname
  return { origin: `${url.protocol}//${host}`, basePath: url.pathname.replace(/\/+$/, ''), host }
}
