import type { Path } from './locate.ts'

/** How a message names the value at path: `weight`, `paths[1]`, `context "orders"`. */
export function label (path: Path): string {
  if (path.length === 0) return 'the config'
  const last = String(path[path.length - 1])
  const parent = String(path[path.length - 2])
  if (path.length === 2 && parent === 'upstreams') return `upstream "${last}"`
  if (path.length === 2 && parent === 'contexts') return `context "${last}"`
  if (path.length > 1 && /^\d+$/.test(last)) return `${parent}[${last}]`
  return last
}

export function nameList (names: readonly string[], max = 10): string {
  const shown = names.slice(0, max).join(', ')
  return names.length > max ? `${shown}, … (${names.length} in all)` : shown
}

/** The candidate within edit distance 2 of word, if any (closest first, then first listed). */
export function closest (word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined
  let bestDistance = 3
  for (const c of candidates) {
    const d = editDistance(word, c, bestDistance)
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  return best
}

/** Levenshtein distance, giving up (returning `limit`) once it cannot be below limit. */
export function editDistance (a: string, b: string, limit = Infinity): number {
  if (Math.abs(a.length - b.length) >= limit) return limit
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    let rowMin = i
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
      rowMin = Math.min(rowMin, row[j])
    }
    if (rowMin >= limit) return limit
    prev = row
  }
  return Math.min(prev[b.length], limit)
}
