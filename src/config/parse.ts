import { isMap, isSeq, visit, type Document, type Node } from 'yaml'
import type { Config, ConfigIssue } from '../types.ts'
import { checkYaml } from './check-yaml.ts'
import { configHash } from './hash.ts'
import { interpolate, interpolateData, type Env } from './interpolate.ts'
import { byPosition } from './issues.ts'
import { Locator } from './locate.ts'
import { isRecord, type Problems } from './problems.ts'
import { readPlain, REFUSED } from './read-plain.ts'
import { readYaml } from './read-yaml.ts'
import { Report } from './report.ts'
import { schemaIssues } from './schema-errors.ts'
import { buildConfig } from './validate.ts'

export const MAX_ALIAS_COUNT = 100
/** Past this, more errors help nobody (a garbage file can have hundreds of thousands). */
const MAX_ERRORS = 1000

export interface ParseOptions {
  env: Env
  /** 'error' for serve; 'warn' for check, where config-PR pipelines hold no secrets. */
  unsetVars: 'error' | 'warn'
}

export interface ParseResult {
  /** null whenever there are errors. */
  config: Config | null
  errors: ConfigIssue[]
  warnings: ConfigIssue[]
}

/**
 * Parses and validates config text. Pure: `file` only names the source in
 * issues and anchors a relative stateFile. A valid file is read on the quick
 * path; any issue sends it to yaml's Document, which places every issue.
 */
export function parseConfig (text: string, file: string, opts: ParseOptions): ParseResult {
  // A byte-order mark would shift every column of line 1; the hash still covers it.
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text
  const hash = configHash(text)
  const quick = quickConfig(source, file, opts.env, hash)
  return quick !== null ? { config: quick, errors: [], warnings: [] } : parseWithDocument(source, file, opts, hash)
}

/** Plain objects list integer-like keys first; the config's order is the file's. */
const INDEX_LIKE = /^(?:0|[1-9][0-9]*)$/

/** Checks that stop at the first problem: the Document path then reports them all. */
const REFUSING: Problems = {
  error () {
    throw REFUSED
  },
  keys (_path, data) {
    const keys = Object.keys(data)
    if (keys.some(k => INDEX_LIKE.test(k))) throw REFUSED
    return keys
  }
}

/**
 * The config of a valid file that js-yaml reads exactly as yaml would
 * (read-plain.ts), without building yaml's Document (for 10,000 contexts, a
 * second of work and 130 MB more peak memory). Null for anything else.
 */
export function quickConfig (text: string, file: string, env: Env, hash: string): Config | null {
  try {
    const data = readPlain(text)
    if (!isRecord(data) || !interpolateData(data, env) || schemaIssues(data).length > 0) return null
    return buildConfig(data, file, hash, REFUSING)
  } catch {
    return null
  }
}

/** Parses and validates with yaml's Document, which knows where every node stands. */
export function parseWithDocument (source: string, file: string, opts: ParseOptions, hash: string): ParseResult {
  const report = new Report(file, source)
  let config: Config | null = null
  try {
    config = parseInto(source, file, opts, report, hash)
  } catch (err) {
    report.error(0, `the config could not be read: ${(err as Error).message}`)
  }
  const errors = capped(sorted(report.errors))
  return { config: errors.length === 0 ? config : null, errors, warnings: capped(sorted(report.warnings)) }
}

function parseInto (text: string, file: string, opts: ParseOptions, report: Report, hash: string): Config | null {
  // Values whose own errors are left unsaid: a refused tag or an unset variable already explains them.
  const explained = new Set<Node>()
  const doc = readYaml(text, report)
  if (!doc || !checkYaml(doc, text, report, explained)) return null
  const root = doc.contents as Node | null
  if (root === null) {
    report.error(0, 'the file is empty; it needs at least "upstreams" and "default"')
    return null
  }
  if (!isMap(root)) {
    const found = isSeq(root) ? 'a list' : 'a single value'
    report.error(root.range?.[0] ?? 0, `the file must be a mapping with keys such as "upstreams" and "default", not ${found}`)
    return null
  }

  for (const issue of interpolate(doc, opts.env)) {
    explained.add(issue.node)
    const offset = issue.node.range?.[0] ?? 0
    if (issue.unset && opts.unsetVars === 'warn') report.warning(offset, issue.message)
    else report.error(offset, issue.message)
  }

  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT })
  } catch (err) {
    const unresolved = /^Unresolved alias[^:]*: (.*)$/.exec((err as Error).message)
    report.error(firstAlias(doc, unresolved?.[1]), unresolved !== null
      ? `alias *${unresolved[1]} refers to no anchor &${unresolved[1]} defined before it`
      : `aliases expand too much (more than ${MAX_ALIAS_COUNT} expansions); is this an alias bomb?`)
    return null
  }

  const locator = new Locator(doc)
  const problems: Problems = {
    error (path, message, at = 'value') {
      if (at === 'value') {
        const node = locator.node(path)
        if (node && explained.has(node)) return
      }
      report.error(locator.offset(path, at), message)
    },
    keys: (path, obj) => locator.keys(path, obj)
  }
  for (const issue of schemaIssues(data)) problems.error(issue.path, issue.message, issue.at)
  return buildConfig(data, file, hash, problems)
}

/** Where the first alias (named `name`, when given) stands. */
function firstAlias (doc: Document.Parsed, name?: string): number {
  let offset = 0
  visit(doc, {
    Alias (_, node) {
      if (name !== undefined && node.source !== name) return
      offset = node.range?.[0] ?? 0
      return visit.BREAK
    }
  })
  return offset
}

function capped (issues: ConfigIssue[]): ConfigIssue[] {
  if (issues.length <= MAX_ERRORS) return issues
  const rest = issues.length - MAX_ERRORS
  return [...issues.slice(0, MAX_ERRORS), { ...issues[MAX_ERRORS], message: `${rest} more not shown` }]
}

/** File order, each issue once (an aliased node can be reached by several paths). */
function sorted (issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>()
  return issues
    .filter(i => {
      const key = `${i.line}:${i.col}:${i.message}`
      if (seen.has(key)) return false
      seen.add(key)
      return true
    })
    .sort(byPosition)
}
