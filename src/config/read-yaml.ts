import { Composer, CST, Lexer, Parser, type Document } from 'yaml'
import type { Report } from './report.ts'

export const MAX_DEPTH = 64
const MAX_YAML_ERRORS = 50

/**
 * Parses one YAML 1.2 document without ever throwing. Returns null when the
 * text is not a usable document; every reason is in `report`.
 */
export function readYaml (text: string, report: Report): Document.Parsed | null {
  const stackTraceLimit = Error.stackTraceLimit
  // yaml makes an Error per problem; stack traces made 1 MiB of garbage take seconds.
  Error.stackTraceLimit = 0
  try {
    const tokens = Array.from(new Lexer().lex(text))
    const deep = nestingOverflow(tokens)
    if (deep >= 0) {
      report.error(deep, `nesting is deeper than ${MAX_DEPTH} levels`)
      return null
    }
    return compose(tokens, text.length, report)
  } catch (err) {
    report.error(0, `the file could not be read as YAML: ${(err as Error).message}`)
    return null
  } finally {
    Error.stackTraceLimit = stackTraceLimit
  }
}

function compose (tokens: string[], length: number, report: Report): Document.Parsed | null {
  const parser = new Parser()
  const composer = new Composer({ version: '1.2', schema: 'core', merge: false, uniqueKeys: false, prettyErrors: false })
  const docs: Document.Parsed[] = []
  const collect = (cst: Iterable<CST.Token>): boolean => {
    for (const token of cst) for (const doc of composer.next(token)) docs.push(doc)
    return docs.length < 2
  }
  for (const token of tokens) if (!collect(parser.next(token))) break
  if (docs.length < 2 && collect(parser.end())) for (const doc of composer.end(true, length)) docs.push(doc)

  const doc = docs[0]
  if (docs.length > 1) {
    report.error(docs[1].range[0], 'the file must hold a single YAML document; remove the second one')
    return null
  }
  for (const err of doc.errors.slice(0, MAX_YAML_ERRORS)) report.error(err.pos[0], `invalid YAML: ${err.message}`)
  if (doc.errors.length > MAX_YAML_ERRORS) {
    const rest = doc.errors.length - MAX_YAML_ERRORS
    report.error(doc.errors[MAX_YAML_ERRORS].pos[0], `invalid YAML: ${rest} more errors not shown`)
  }
  if (doc.errors.length > 0) return null
  const version = doc.directives?.yaml
  if (version?.explicit && version.version !== '1.2') {
    report.error(0, `%YAML ${version.version} is not supported; the file is read as YAML 1.2`)
    return null
  }
  for (const w of doc.warnings) if (w.code !== 'TAG_RESOLVE_FAILED') report.warning(w.pos[0], `YAML: ${w.message}`)
  return doc
}

/**
 * A cheap bound on nesting, taken from tokens before yaml builds anything:
 * yaml's parser takes seconds (or exhausts memory) on deeply nested input.
 * The bound can be twice the real depth, so it is held to 4× the limit and
 * the exact check on the document decides near the limit. Returns the
 * offending offset or -1.
 */
function nestingOverflow (tokens: string[]): number {
  let offset = 0
  let flow = 0
  let indent = 0
  let atLineStart = true
  let onLine = 0
  let scalarSource = false
  const indents: number[] = []
  for (const token of tokens) {
    const type = scalarSource ? 'scalar-source' : CST.tokenType(token)
    scalarSource = false
    switch (type) {
      case 'scalar':
        scalarSource = true
        continue
      case 'doc-mode':
      case 'flow-error-end':
        continue
      case 'newline':
        atLineStart = true
        indent = 0
        onLine = 0
        break
      case 'space':
        if (atLineStart && token[0] === ' ') indent = token.length
        break
      case 'comment':
        break
      case 'flow-map-start':
      case 'flow-seq-start':
        flow++
        break
      case 'flow-map-end':
      case 'flow-seq-end':
        if (flow > 0) flow--
        break
      case 'seq-item-ind':
      case 'explicit-key-ind':
      case 'map-value-ind':
        if (flow === 0) onLine++
        break
    }
    if (atLineStart && flow === 0 && type !== 'newline' && type !== 'space' && type !== 'comment') {
      atLineStart = false
      while (indents.length > 0 && indents[indents.length - 1] > indent) indents.pop()
      if (indents[indents.length - 1] !== indent) indents.push(indent)
    }
    if (2 * indents.length + onLine + flow > 4 * MAX_DEPTH) return offset
    offset += token.length
  }
  return -1
}
