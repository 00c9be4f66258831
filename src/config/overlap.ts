import type { Context } from '../types.ts'

export interface Overlap {
  /** The later of the two contexts, which the error points at. */
  context: Context
  other: Context
  prefix: string
  /** null: both match any host / any method. */
  host: string | null
  method: string | null
}

type Dimension = 'prefixes' | 'hosts' | 'methods'
const ANY = ''
const DIMENSIONS: Dimension[] = ['prefixes', 'hosts', 'methods']

interface Claims {
  context: Context
  prefixes: Set<string>
  hosts: Set<string>
  methods: Set<string>
}

/**
 * Pairs of contexts that claim the same request with the same precedence:
 * a shared prefix, the same host specificity with a shared host (or both
 * any host), and likewise for methods. At most one overlap per context.
 *
 * Each context is compared only with earlier ones sharing a prefix, a host
 * or a method, whichever of the three gives the fewest candidates: many
 * prefixes, or one prefix split by hosts or by methods, all stay linear.
 */
export function findOverlaps (contexts: readonly Context[]): Overlap[] {
  const index: Record<Dimension, Map<string, number[]>> = { prefixes: new Map(), hosts: new Map(), methods: new Map() }
  const all: Claims[] = []
  const seenBy = new Int32Array(contexts.length).fill(-1)
  const overlaps: Overlap[] = []
  contexts.forEach((context, i) => {
    const claims: Claims = {
      context,
      prefixes: new Set(context.paths),
      hosts: new Set(context.hosts ?? [ANY]),
      methods: new Set(context.methods ?? [ANY])
    }
    const dimension = cheapest(index, claims)
    search: for (const value of claims[dimension]) {
      for (const j of index[dimension].get(value) ?? []) {
        if (seenBy[j] === i) continue
        seenBy[j] = i
        const shared = sharedClaim(claims, all[j])
        if (shared) {
          overlaps.push({ context, other: all[j].context, ...shared })
          break search
        }
      }
    }
    all.push(claims)
    for (const d of DIMENSIONS) for (const value of claims[d]) push(index[d], value, i)
  })
  return overlaps
}

function cheapest (index: Record<Dimension, Map<string, number[]>>, claims: Claims): Dimension {
  let best: Dimension = 'prefixes'
  let bestCount = Infinity
  for (const d of DIMENSIONS) {
    let count = 0
    for (const value of claims[d]) count += index[d].get(value)?.length ?? 0
    if (count < bestCount) {
      best = d
      bestCount = count
    }
  }
  return best
}

function sharedClaim (a: Claims, b: Claims): Pick<Overlap, 'prefix' | 'host' | 'method'> | null {
  const prefix = firstShared(a.prefixes, b.prefixes)
  const host = prefix === undefined ? undefined : firstShared(a.hosts, b.hosts)
  const method = host === undefined ? undefined : firstShared(a.methods, b.methods)
  if (prefix === undefined || host === undefined || method === undefined) return null
  return { prefix, host: host === ANY ? null : host, method: method === ANY ? null : method }
}

/** A value both sets hold: the first in the smaller set's order, so a huge list costs nothing against a small one. */
function firstShared (a: Set<string>, b: Set<string>): string | undefined {
  const [small, large] = a.size <= b.size ? [a, b] : [b, a]
  for (const v of small) if (large.has(v)) return v
  return undefined
}

function push (map: Map<string, number[]>, key: string, value: number): void {
  const list = map.get(key)
  if (list) list.push(value)
  else map.set(key, [value])
}
