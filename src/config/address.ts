import { isIP, isIPv4, isIPv6 } from 'node:net'
import type { HostPort } from '../types.ts'
import { isHostName } from './match.ts'

/** `host:port` or `[v6]:port`; the host comes back without brackets, lower-cased. */
export function parseHostPort (s: string): HostPort | null {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s)
  if (!m) return null
  const port = Number(m[3])
  if (port > 65535) return null
  if (m[1] !== undefined) return isIPv6(m[1]) ? { host: m[1].toLowerCase(), port } : null
  const host = m[2].toLowerCase()
  return isIPv4(host) || isHostName(host) ? { host, port } : null
}

export function formatHostPort ({ host, port }: HostPort): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`
}

/** Whether two listeners would fight over one socket (a wildcard address takes the port on every interface). */
export function sameSocket (a: HostPort, b: HostPort): boolean {
  if (a.port !== b.port || a.port === 0) return false
  const wildcard = (h: string) => h === '0.0.0.0' || h === '::'
  return a.host === b.host || wildcard(a.host) || wildcard(b.host)
}

/** An address or CIDR as node:net's BlockList takes it. */
export function isAddressOrCidr (s: string): boolean {
  const slash = s.indexOf('/')
  if (slash === -1) return isIP(s) !== 0
  const family = isIP(s.slice(0, slash))
  const bits = s.slice(slash + 1)
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false
  return Number(bits) <= (family === 4 ? 32 : 128)
}
