import type { Context, Fallback, Guard, Ramp, Rewrite, Shadow, Side, Sticky } from '../types.ts'
import type { Path } from './locate.ts'
import { hostProblem, isToken } from './match.ts'
import { findOverlaps } from './overlap.ts'
import { coversPath, pathProblem } from './paths.ts'
import { segmentsAt } from './segments.ts'
import { durationAt, isRecord, upstreamAt, type Problems } from './problems.ts'

const SIDES: Side[] = ['legacy', 'new']
const TWO_DECIMALS = /^\d+(\.\d{1,2})?$/

/** Contexts in file order; those that overlap another are reported at the later one. */
export function buildContexts (problems: Problems, value: unknown, upstreams: ReadonlySet<string>): Context[] {
  if (!isRecord(value)) return []
  const contexts: Context[] = []
  const matchable: Context[] = []
  for (const name of problems.keys(['contexts'], value)) {
    const raw = value[name]
    if (!isRecord(raw)) continue
    const at = ['contexts', name]
    const match = isRecord(raw.match) ? raw.match : {}
    const paths = listAt(problems, [...at, 'match', 'paths'], match.paths, pathEntry)
    const hosts = listAt(problems, [...at, 'match', 'hosts'], match.hosts, hostEntry)
    const methods = listAt(problems, [...at, 'match', 'methods'], match.methods, methodEntry)
    const context: Context = {
      name,
      paths: paths.values,
      hosts: match.hosts === undefined ? null : hosts.values,
      methods: match.methods === undefined ? null : methods.values,
      legacy: upstreamAt(problems, [...at, 'legacy'], raw.legacy, upstreams),
      new: upstreamAt(problems, [...at, 'new'], raw.new, upstreams),
      weight: weightAt(problems, [...at, 'weight'], raw.weight),
      sticky: stickyAt(problems, [...at, 'sticky'], raw.sticky),
      rewrite: rewriteAt(problems, [...at, 'rewrite'], raw.rewrite, paths.values),
      shadow: shadowAt(problems, [...at, 'shadow'], raw.shadow),
      fallback: fallbackAt(problems, [...at, 'fallback'], raw.fallback),
      guard: guardAt(problems, [...at, 'guard'], raw.guard),
      ramp: rampAt(problems, [...at, 'ramp'], raw.ramp)
    }
    const segments = segmentsAt(problems, [...at, 'segments'], raw.segments)
    if (segments !== undefined) context.segments = segments
    contexts.push(context)
    if (paths.ok && hosts.ok && methods.ok && isRecord(raw.match)) matchable.push(context)
  }
  for (const { context, other, prefix, host, method } of findOverlaps(matchable)) {
    problems.error(
      ['contexts', context.name],
      `context "${context.name}" overlaps context "${other.name}": both match ${host === null ? 'any host' : `host ${host}`}, ` +
      `prefix ${prefix}, ${method === null ? 'any method' : `method ${method}`}; give one of them other paths, hosts or methods`,
      'key'
    )
  }
  return contexts
}

type Entry = (raw: string) => { value: string } | { problem: string }

const pathEntry: Entry = raw => {
  const problem = pathProblem('path', raw)
  return problem ? { problem } : { value: raw }
}

const hostEntry: Entry = raw => {
  const value = raw.toLowerCase()
  const problem = hostProblem(value)
  return problem ? { problem } : { value }
}

const methodEntry: Entry = raw =>
  isToken(raw) ? { value: raw.toUpperCase() } : { problem: `method "${raw}" is not a valid HTTP method name` }

/** Valid, normalised entries of a list; `ok` is false when any entry was rejected. */
function listAt (problems: Problems, path: Path, value: unknown, entry: Entry): { values: string[]; ok: boolean } {
  if (!Array.isArray(value)) return { values: [], ok: value === undefined }
  const seen = new Set<string>()
  const what = String(path[path.length - 1]).replace(/s$/, '')
  let ok = true
  value.forEach((raw, i) => {
    if (typeof raw !== 'string') {
      ok = false
      return
    }
    const result = entry(raw)
    if ('problem' in result) problems.error([...path, i], result.problem)
    else if (seen.has(result.value)) problems.error([...path, i], `${what} "${result.value}" is listed twice`)
    else {
      seen.add(result.value)
      return
    }
    ok = false
  })
  return { values: [...seen], ok }
}

function weightAt (problems: Problems, path: Path, value: unknown, what = 'weight'): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 100)) return 0
  if (!TWO_DECIMALS.test(String(value))) problems.error(path, `${what} must have at most two decimals (steps of 0.01), not ${value}`)
  return value + 0
}

const SAFE_METHODS = ['GET', 'HEAD', 'OPTIONS']
const FIELD_PATH = /^(\*|[^.*]+)(\.(\*|[^.*]+))*$/

function shadowAt (problems: Problems, path: Path, value: unknown): Shadow | null {
  if (!isRecord(value)) return null
  const compare = isRecord(value.compare) ? value.compare : {}
  const redact = isRecord(value.redact) ? value.redact : {}
  const fields = (at: Path, v: unknown): string[] => listAt(problems, at, v, raw =>
    FIELD_PATH.test(raw) ? { value: raw } : { problem: `"${raw}" is not a dotted field path (such as items.*.updatedAt)` }).values
  const headers = (at: Path, v: unknown): string[] => listAt(problems, at, v, hostlessHeader).values
  return {
    percent: weightAt(problems, [...path, 'percent'], value.percent, 'percent'),
    methods: value.methods === undefined ? SAFE_METHODS : listAt(problems, [...path, 'methods'], value.methods, methodEntry).values,
    maxBodyBytes: typeof value.maxBodyBytes === 'number' ? value.maxBodyBytes : 65_536,
    headers: headers([...path, 'compare', 'headers'], compare.headers),
    ignore: fields([...path, 'compare', 'ignore'], compare.ignore),
    redactHeaders: headers([...path, 'redact', 'headers'], redact.headers),
    redactFields: fields([...path, 'redact', 'fields'], redact.fields),
    learnNoise: typeof value.learnNoise === 'number' ? value.learnNoise : 5
  }
}

function fallbackAt (problems: Problems, path: Path, value: unknown): Fallback | null {
  if (value === undefined || value === false) return null
  const defaults: Fallback = { on5xx: false, methods: SAFE_METHODS, maxBodyBytes: 0 }
  if (value === true) return defaults
  if (!isRecord(value)) {
    problems.error(path, 'fallback must be true, false, or a mapping with on5xx, methods and maxBodyBytes')
    return null
  }
  for (const key of Object.keys(value)) {
    if (!['on5xx', 'methods', 'maxBodyBytes'].includes(key)) problems.error([...path, key], `unknown key "${key}" (allowed: on5xx, methods, maxBodyBytes)`, 'key')
  }
  if (value.on5xx !== undefined && typeof value.on5xx !== 'boolean') problems.error([...path, 'on5xx'], 'on5xx must be true or false')
  const big = value.maxBodyBytes
  if (big !== undefined && !(Number.isInteger(big) && (big as number) >= 0 && (big as number) <= 1_048_576)) problems.error([...path, 'maxBodyBytes'], 'maxBodyBytes must be a whole number of bytes from 0 to 1048576')
  return {
    on5xx: value.on5xx === true,
    methods: value.methods === undefined ? SAFE_METHODS : listAt(problems, [...path, 'methods'], value.methods, methodEntry).values,
    maxBodyBytes: typeof big === 'number' && Number.isInteger(big) && big >= 0 ? big : 0
  }
}

function guardAt (problems: Problems, path: Path, value: unknown): Guard | null {
  if (!isRecord(value)) return null
  return {
    maxErrorRateDelta: typeof value.maxErrorRateDelta === 'number' ? value.maxErrorRateDelta : 5,
    maxLatencyRatio: typeof value.maxLatencyRatio === 'number' ? value.maxLatencyRatio : 3,
    windowMs: durationAt(problems, [...path, 'window'], value.window, 300_000),
    minRequests: typeof value.minRequests === 'number' ? value.minRequests : 100
  }
}

function rampAt (problems: Problems, path: Path, value: unknown): Ramp | null {
  if (!isRecord(value) || !Array.isArray(value.steps)) return null
  const steps = value.steps.filter((s): s is number => typeof s === 'number')
  steps.forEach((step, i) => {
    if (!TWO_DECIMALS.test(String(step))) problems.error([...path, 'steps', i], `ramp step must have at most two decimals, not ${step}`)
    else if (i > 0 && step <= steps[i - 1]) problems.error([...path, 'steps', i], `ramp steps must go up: ${step} comes after ${steps[i - 1]}`)
  })
  return { steps, everyMs: durationAt(problems, [...path, 'every'], value.every, 600_000) }
}

const hostlessHeader: Entry = raw =>
  isToken(raw) ? { value: raw.toLowerCase() } : { problem: `"${raw}" is not a valid header name` }

function stickyAt (problems: Problems, path: Path, value: unknown): Sticky | null {
  if (!isRecord(value)) return null
  if (typeof value.header === 'string' && value.header !== '') {
    if (!isToken(value.header)) problems.error([...path, 'header'], `sticky header "${value.header}" is not a valid header name`)
    return { header: value.header.toLowerCase() }
  }
  if (typeof value.cookie === 'string' && value.cookie !== '') {
    if (!isToken(value.cookie)) problems.error([...path, 'cookie'], `sticky cookie "${value.cookie}" is not a valid cookie name`)
    return { cookie: value.cookie }
  }
  return null
}

function rewriteAt (problems: Problems, path: Path, value: unknown, paths: readonly string[]): Context['rewrite'] {
  const rewrite: Context['rewrite'] = {}
  if (!isRecord(value)) return rewrite
  for (const side of SIDES) {
    const raw = value[side]
    if (!isRecord(raw)) continue
    const at = [...path, side]
    const result: Rewrite = {}
    if (typeof raw.stripPrefix === 'string') {
      const strip = raw.stripPrefix
      const problem = strip === '/' ? 'stripPrefix "/" strips nothing; leave it out' : pathProblem('stripPrefix', strip)
      const uncovered = paths.find(p => !coversPath(strip, p))
      if (problem) problems.error([...at, 'stripPrefix'], problem)
      else if (uncovered !== undefined) {
        problems.error([...at, 'stripPrefix'], `stripPrefix "${strip}" would never apply to path "${uncovered}": it is not a prefix of it on a segment boundary`)
      } else result.stripPrefix = strip
    }
    if (typeof raw.addPrefix === 'string') {
      const add = raw.addPrefix
      const problem = add === '/' ? 'addPrefix "/" adds nothing; leave it out' : pathProblem('addPrefix', add)
      if (problem) problems.error([...at, 'addPrefix'], problem)
      else result.addPrefix = add
    }
    rewrite[side] = result
  }
  return rewrite
}
