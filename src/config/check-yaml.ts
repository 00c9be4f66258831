import { isAlias, isMap, isScalar, isSeq, type Document, type Node, type Scalar } from 'yaml'
import { MAX_DEPTH } from './read-yaml.ts'
import type { Report } from './report.ts'

const CORE = 'tag:yaml.org,2002:'
const SCALAR_TAGS = new Set(['str', 'int', 'float', 'bool', 'null'].map(t => CORE + t))
const SEQ_TAGS = new Set([CORE + 'seq'])
const MAP_TAGS = new Set([CORE + 'map'])

/** The string a key becomes in the plain object yaml's toJS() builds. */
export function keyString (key: Scalar): string {
  return key.value === null || key.value === undefined ? '' : String(key.value)
}

/**
 * Rules yaml leaves to the reader: depth, duplicate keys (yaml's own check is
 * quadratic in the number of keys), keys that are not scalars, custom tags.
 * Nodes with a refused tag are added to `explained`. Returns false when the
 * document is too deep to look at further.
 */
export function checkYaml (doc: Document.Parsed, text: string, report: Report, explained: Set<Node>): boolean {
  const checkTag = (node: Node, allowed: Set<string>): void => {
    if (node.tag === undefined || allowed.has(node.tag)) return
    const tag = node.tag.startsWith(CORE) ? '!!' + node.tag.slice(CORE.length) : node.tag
    report.error(tagStart(text, start(node)), `tag ${tag} is not allowed here; write a plain YAML value`)
    explained.add(node)
  }
  const stack: { node: Node; depth: number }[] = []
  if (doc.contents) stack.push({ node: doc.contents, depth: 0 })
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!
    if (isAlias(node)) continue
    if (isScalar(node)) {
      checkTag(node, SCALAR_TAGS)
      continue
    }
    if (depth + 1 > MAX_DEPTH) {
      report.error(start(node), `nesting is deeper than ${MAX_DEPTH} levels`)
      return false
    }
    if (isSeq(node)) {
      checkTag(node, SEQ_TAGS)
      for (const item of node.items) if (item) stack.push({ node: item as Node, depth: depth + 1 })
    } else if (isMap(node)) {
      checkTag(node, MAP_TAGS)
      const seen = new Map<string, Scalar>()
      // Pairs reported here are dropped, so they are not reported again as unknown keys.
      node.items = node.items.filter(pair => {
        const key = pair.key as Node | null
        if (!isScalar(key)) {
          report.error(key ? start(key) : start(node), 'keys must be plain names, not lists, mappings or aliases')
          return false
        }
        checkTag(key, SCALAR_TAGS)
        const name = keyString(key)
        const first = seen.get(name)
        if (first) {
          report.error(start(key), `duplicate key "${name}" (already set at line ${report.position(start(first)).line})`)
          return false
        }
        seen.set(name, key)
        if (pair.value) stack.push({ node: pair.value as Node, depth: depth + 1 })
        return true
      })
    }
  }
  return true
}

/** yaml keeps no position for a tag: it is the last `!…` word before the value. */
function tagStart (text: string, valueStart: number): number {
  let i = text.lastIndexOf('!', valueStart - 1)
  while (i > 0 && !/[\s[{,]/.test(text[i - 1])) i--
  return Math.max(i, 0)
}

function start (node: Node): number {
  return node.range?.[0] ?? 0
}
