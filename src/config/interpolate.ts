import { visit, type Document, type Scalar } from 'yaml'

export type Env = Record<string, string | undefined>

export interface Expansion {
  value: string
  /** Variables referenced without a default that the environment does not set. */
  unset: string[]
  /** A `${` that is not a well-formed reference, as written. */
  invalid: string | null
}

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([^]*))?$/

/**
 * Expands `${VAR}` and `${VAR:-default}` (default when VAR is unset or empty);
 * `$${` is a literal `${`. Values are data: they are never expanded again.
 */
export function expand (text: string, env: Env): Expansion {
  const result: Expansion = { value: '', unset: [], invalid: null }
  let out = ''
  let i = 0
  for (let at = text.indexOf('$', i); at !== -1; at = text.indexOf('$', i)) {
    out += text.slice(i, at)
    if (text.startsWith('$${', at)) {
      out += '${'
      i = at + 3
      continue
    }
    if (text[at + 1] !== '{') {
      out += '$'
      i = at + 1
      continue
    }
    const end = text.indexOf('}', at + 2)
    const m = end === -1 ? null : REFERENCE.exec(text.slice(at + 2, end))
    if (!m) {
      result.invalid ??= end === -1 ? text.slice(at) : text.slice(at, end + 1)
      out += end === -1 ? text.slice(at) : text.slice(at, end + 1)
      i = end === -1 ? text.length : end + 1
      continue
    }
    const [, name, fallback] = m
    const value = env[name]
    if (fallback !== undefined && (value === undefined || value === '')) out += fallback
    else if (value !== undefined) out += value
    else result.unset.push(name)
    i = end + 1
  }
  result.value = out + text.slice(i)
  return result
}

export interface ScalarIssue {
  node: Scalar
  message: string
  /** An unset variable, which `unsetVars: 'warn'` turns into a warning. */
  unset: boolean
}

/**
 * Expands references in every string value of the document in place (keys
 * are names, never expanded). Returns the problems, each with its scalar.
 */
export function interpolate (doc: Document.Parsed, env: Env): ScalarIssue[] {
  const issues: ScalarIssue[] = []
  visit(doc, {
    Scalar (key, node) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('$')) return
      const { value, unset, invalid } = expand(node.value, env)
      node.value = value
      if (invalid !== null) {
        const message = `"${invalid}" is not a valid variable reference; write \${NAME}, \${NAME:-default}, or $\${ for a literal "\${"`
        issues.push({ node, message, unset: false })
      }
      for (const name of new Set(unset)) issues.push({ node, message: `environment variable ${name} is not set`, unset: true })
    }
  })
  return issues
}

/**
 * Expands references in every string value of plain data (lists and
 * mappings) in place, as `interpolate` does in a document. Returns false at
 * the first problem, which only the document can place.
 */
export function interpolateData (data: unknown, env: Env): boolean {
  if (typeof data !== 'object' || data === null) return true
  const entries = data as Record<string, unknown>
  for (const key of Object.keys(entries)) {
    const value = entries[key]
    if (typeof value !== 'string') {
      if (!interpolateData(value, env)) return false
    } else if (value.includes('$')) {
      const { value: expanded, unset, invalid } = expand(value, env)
      if (unset.length > 0 || invalid !== null) return false
      entries[key] = expanded
    }
  }
  return true
}
