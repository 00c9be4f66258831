import type { Path } from './locate.ts'
import { parseDuration } from './duration.ts'
import { DURATION_PATTERN } from './schema.ts'
import { label, nameList } from './words.ts'

/** Where the semantic checks report to; positions are found from the path. */
export interface Problems {
  error(path: Path, message: string, at?: 'key' | 'value'): void
  /** Keys of the mapping at path, in file order. */
  keys(path: Path, data: Record<string, unknown>): string[]
}

export function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

const DURATION = new RegExp(DURATION_PATTERN)
/** setTimeout fires at once for anything longer. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** Milliseconds of the duration at path; `fallback` when absent or already reported by the schema. */
export function durationAt (problems: Problems, path: Path, value: unknown, fallback: number): number {
  if (typeof value !== 'string' || !DURATION.test(value)) return fallback
  const ms = parseDuration(value)
  if (ms !== null && ms <= MAX_TIMER_MS) return ms
  problems.error(path, `${label(path)} must be more than 0 and at most 596h`)
  return fallback
}

/** The upstream name at path; reports it when undeclared (unless none are: that is reported already). */
export function upstreamAt (problems: Problems, path: Path, value: unknown, declared: ReadonlySet<string>): string {
  if (typeof value !== 'string') return ''
  if (declared.size > 0 && !declared.has(value)) {
    problems.error(path, `${label(path)} "${value}" is not a declared upstream (declared: ${nameList([...declared])})`)
  }
  return value
}
