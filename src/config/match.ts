/** Rules for the `hosts`, `methods` and sticky names a context matches on. */

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
/** RFC 9110 token: methods, header names and cookie names. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

export function isHostName (host: string): boolean {
  return host.length <= 253 && host.split('.').every(label => LABEL.test(label))
}

export function isToken (s: string): boolean {
  return TOKEN.test(s)
}

/** Why a (lower-cased) hosts entry is not usable, or null when it is. */
export function hostProblem (host: string): string | null {
  if (/:\d*$/.test(host) && !host.includes('[')) return `host "${host}" must not include a port; hosts match the Host header without it`
  const name = host.startsWith('*.') ? host.slice(2) : host
  if (isHostName(name)) return null
  if (host.includes('*')) return `host "${host}" is not valid: a wildcard is only allowed as a leading "*." (such as *.example.com)`
  return `host "${host}" is not a valid host name (letters, digits and "-" in dot-separated labels)`
}
