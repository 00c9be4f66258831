import type { CompiledContext, MethodSlot, PrefixEntry, RoutingTable } from './table.ts'

/** The Host header as contexts name hosts: lower-case, no port, no trailing
 * dot; an IPv6 literal keeps its brackets. '' when absent. */
export function normalizeHost (hostHeader: string | undefined): string {
  if (hostHeader === undefined) return ''
  let end = hostHeader.length
  let upper = false
  if (hostHeader.charCodeAt(0) === 0x5b) {
    const close = hostHeader.indexOf(']')
    if (close !== -1) end = close + 1
    for (let i = 1; i < end; i++) {
      const c = hostHeader.charCodeAt(i)
      if (c >= 0x41 && c <= 0x5a) upper = true
    }
  } else {
    for (let i = 0; i < end; i++) {
      const c = hostHeader.charCodeAt(i)
      if (c === 0x3a) {
        end = i
        break
      }
      if (c >= 0x41 && c <= 0x5a) upper = true
    }
    if (end > 0 && hostHeader.charCodeAt(end - 1) === 0x2e) end--
  }
  const host = end === hostHeader.length ? hostHeader : hostHeader.slice(0, end)
  return upper ? host.toLowerCase() : host
}

function inSlot (slot: MethodSlot, method: string): CompiledContext | null {
  if (slot.byMethod !== null) {
    const byMethod = slot.byMethod.get(method)
    if (byMethod !== undefined) return byMethod
  }
  return slot.any
}

/** The context at one prefix for (host, method): exact host, then the most
 * specific `*.` wildcard, then contexts without hosts; within each, a context
 * listing the method beats one without methods. */
function inEntry (entry: PrefixEntry, host: string, method: string): CompiledContext | null {
  if (entry.sole !== null) return entry.sole
  if (entry.exactHosts !== null) {
    const slot = entry.exactHosts.get(host)
    if (slot !== undefined) {
      const found = inSlot(slot, method)
      if (found !== null) return found
    }
  }
  if (entry.wildcardHosts !== null) {
    // `*.example.com` needs at least one label before `.example.com`.
    for (let dot = host.indexOf('.', 1); dot !== -1; dot = host.indexOf('.', dot + 1)) {
      const slot = entry.wildcardHosts.get(host.slice(dot))
      if (slot !== undefined) {
        const found = inSlot(slot, method)
        if (found !== null) return found
      }
    }
  }
  return entry.anyHost === null ? null : inSlot(entry.anyHost, method)
}

/**
 * The context a request belongs to, or null for the default upstream. `host`
 * comes from `normalizeHost`, `path` from `canonicalize`. Walks the path's
 * segment boundaries ('/' and ';') from the longest prefix to '/', one Map
 * lookup each: the cost depends on the path, not on the number of contexts.
 */
export function matchContext (table: RoutingTable, host: string, method: string, path: string): CompiledContext | null {
  const lengths = table.prefixLengths
  const prefixes = table.prefixes
  const length = path.length
  if (length < lengths.length && lengths[length] === 1) {
    const entry = prefixes.get(path)
    if (entry !== undefined) {
      const found = inEntry(entry, host, method)
      if (found !== null) return found
    }
  }
  // i is the boundary char's index, so path.slice(0, i) is i chars long; '/'
  // (one char) is the root entry, tried last.
  for (let i = Math.min(length, lengths.length) - 1; i > 1; i--) {
    if (lengths[i] !== 1) continue
    const c = path.charCodeAt(i)
    if (c !== 0x2f && c !== 0x3b) continue
    const entry = prefixes.get(path.slice(0, i))
    if (entry !== undefined) {
      const found = inEntry(entry, host, method)
      if (found !== null) return found
    }
  }
  return table.root === null ? null : inEntry(table.root, host, method)
}
