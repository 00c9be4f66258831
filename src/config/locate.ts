import { isAlias, isMap, isScalar, isSeq, type Document, type Node, type Pair, type YAMLMap } from 'yaml'
import { keyString } from './check-yaml.ts'

export type Path = readonly (string | number)[]

interface Walk {
  node: Node | null
  key: Node | null
  found: boolean
}

/** Finds the YAML node behind a path into the plain data, to point issues at it. */
export class Locator {
  readonly #doc: Document.Parsed
  readonly #pairs = new WeakMap<YAMLMap, Map<string, Pair>>()

  constructor (doc: Document.Parsed) {
    this.#doc = doc
  }

  /** The node at exactly this path (aliases followed), if there is one. */
  node (path: Path): Node | undefined {
    const { node, found } = this.#walk(path)
    if (!found || !node) return undefined
    return isAlias(node) ? (node.resolve(this.#doc) as Node | undefined) : node
  }

  /**
   * Offset of the value at path, or of its key; the nearest existing ancestor
   * when the path is not in the file. A mapping or list is pointed at by its
   * key: a block mapping starts at its first entry, which is not what is wrong.
   */
  offset (path: Path, at: 'key' | 'value' = 'value'): number {
    const { node, key, found } = this.#walk(path)
    if (found && at === 'value' && node && !(key && (isMap(node) || isSeq(node)))) return start(node)
    if (key) return start(key)
    return node ? start(node) : 0
  }

  /** Keys of the mapping at path in file order (plain objects put integer-like keys first). */
  keys (path: Path, data: Record<string, unknown>): string[] {
    const node = this.node(path)
    if (!isMap(node)) return Object.keys(data)
    const keys = new Set<string>()
    for (const pair of node.items) {
      if (isScalar(pair.key) && Object.hasOwn(data, keyString(pair.key))) keys.add(keyString(pair.key))
    }
    return [...keys]
  }

  #walk (path: Path): Walk {
    let node = this.#doc.contents as Node | null
    let key: Node | null = null
    for (const step of path) {
      if (isAlias(node)) node = (node.resolve(this.#doc) as Node | undefined) ?? null
      if (isMap(node)) {
        const pair = this.#pairIndex(node).get(String(step))
        if (!pair) return { node, key, found: false }
        key = pair.key as Node
        node = (pair.value as Node | null) ?? null
      } else if (isSeq(node) && Number(step) < node.items.length) {
        key = null
        node = (node.items[Number(step)] as Node | null) ?? null
      } else {
        return { node, key, found: false }
      }
    }
    return { node, key, found: true }
  }

  #pairIndex (map: YAMLMap): Map<string, Pair> {
    let index = this.#pairs.get(map)
    if (!index) {
      index = new Map()
      for (const pair of map.items) {
        if (isScalar(pair.key) && !index.has(keyString(pair.key))) index.set(keyString(pair.key), pair)
      }
      this.#pairs.set(map, index)
    }
    return index
  }
}

function start (node: Node): number {
  return node.range?.[0] ?? 0
}
