import type { Segment, Side } from '../types.ts'
import type { Path } from './locate.ts'
import { isToken } from './match.ts'
import { isRecord, type Problems } from './problems.ts'

const KINDS = ['header', 'cookie', 'query'] as const

/** The key a segment reads, as the request carries it: a header name in any case is one header. */
function keyOf (kind: typeof KINDS[number], raw: string): string {
  return kind === 'header' ? raw.toLowerCase() : raw
}

/**
 * A context's segments, in file order. Reports names that are not a header or
 * cookie name, values listed twice (in one segment, or for the same header,
 * cookie or query parameter in an earlier one: only the first can ever
 * decide), and names given twice. Shapes the schema refused are skipped.
 */
export function segmentsAt (problems: Problems, path: Path, value: unknown): Segment[] | undefined {
  if (!Array.isArray(value)) return undefined
  const out: Segment[] = []
  /** `kind key\0value` → the segment that has it first. */
  const claimed = new Map<string, number>()
  const names = new Map<string, number>()
  value.forEach((raw, i) => {
    if (!isRecord(raw)) return
    const at = [...path, i]
    const kinds = KINDS.filter(k => typeof raw[k] === 'string' && raw[k] !== '')
    if (kinds.length !== 1 || !Array.isArray(raw.values) || (raw.side !== 'legacy' && raw.side !== 'new')) return
    const kind = kinds[0]
    const given = raw[kind] as string
    if (kind !== 'query' && !isToken(given)) problems.error([...at, kind], `segment ${kind} "${given}" is not a valid ${kind} name`)
    const key = keyOf(kind, given)
    const values: string[] = []
    raw.values.forEach((v: unknown, j: number) => {
      if (typeof v !== 'string' || v === '') return
      const id = `${kind} ${key}\0${v}`
      const first = claimed.get(id)
      if (first === i) problems.error([...at, 'values', j], `value "${v}" is listed twice`)
      else if (first !== undefined) {
        problems.error([...at, 'values', j], `${kind} ${key} = "${v}" is already pinned by segments[${first}]: only the first segment that matches decides, so this one never would`)
      } else {
        claimed.set(id, i)
        values.push(v)
      }
    })
    const segment: Segment = { [kind]: key, values, side: raw.side as Side }
    if (typeof raw.name === 'string') {
      const other = names.get(raw.name)
      if (other !== undefined) problems.error([...at, 'name'], `segment name "${raw.name}" is already used by segments[${other}]`)
      names.set(raw.name, i)
      segment.name = raw.name
    }
    out.push(segment)
  })
  return out.length === 0 ? undefined : out
}

const PLAIN = /^[A-Za-z0-9._~-]+$/

/** A segment in words, for the CLI: `beta: cookie beta = 1 → new`. */
export function segmentText (s: Segment, withName = true): string {
  const kind = s.header !== undefined ? 'header' : s.cookie !== undefined ? 'cookie' : 'query'
  const values = s.values.map(v => PLAIN.test(v) ? v : JSON.stringify(v)).join(', ')
  return `${s.name === undefined || !withName ? '' : `${s.name}: `}${kind} ${s.header ?? s.cookie ?? s.query} = ${values} → ${s.side}`
}
