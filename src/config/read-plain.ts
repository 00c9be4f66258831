import jsyaml from 'js-yaml'
import { isScalar, Schema, type ScalarTag } from 'yaml'
import { MAX_DEPTH } from './read-yaml.ts'

/** What readPlain returns for a text it leaves to the yaml Document path. */
export const REFUSED = Symbol('refused')

/**
 * yaml's own core-schema tags decide what a plain scalar means, so that `yes`,
 * `0o17`, `012`, `1e3`, `.inf` or `~` mean on this path what they mean in
 * yaml's Document (it tries its tags in this order too).
 */
const CORE_TAGS = new Schema({ schema: 'core' }).tags.filter((t): t is ScalarTag => t.default === true && !t.collection && t.test !== undefined)

/** Whether any of them matches, in one test: most plain scalars of a config (names, paths) match none. */
const ANY_CORE_TAG = new RegExp(CORE_TAGS.map(t => `(?:${t.test!.source})`).join('|'))

function plainValue (source: string): unknown {
  if (!ANY_CORE_TAG.test(source)) return source
  const tag = CORE_TAGS.find(t => t.test!.test(source))!
  const value = tag.resolve(source, () => { throw REFUSED }, {})
  return isScalar(value) ? value.value : value
}

/** A tag that no document can spell (tags have no spaces): it marks the plain scalars. */
const PLAIN = 'strangler plain scalar'
/** Plain scalars are the one implicit type; no explicit tag (not even !!str) is known. */
const SCHEMA = new jsyaml.Schema({ implicit: [new jsyaml.Type(PLAIN, { kind: 'scalar', resolve: () => true, construct: plainValue })] })

/** What js-yaml's listener sees; its published types leave out tag and anchor. */
interface NodeState extends jsyaml.State {
  tag: string | null
  anchor: string | null
}

/**
 * Anywhere in the text, even inside a string: an explicit key (`? `), a BOM, a
 * directive (`%YAML`), a lone CR, a tab in indentation (yaml refuses some that
 * js-yaml takes), anything after `---` or `...` on its line (js-yaml reads
 * `----` as a marker and a list, yaml as a string), a `-` that ends a line
 * (js-yaml moves the item after an empty one, `- -\n- x`, into the nested list).
 */
const REFUSED_TEXT = /\?(?:[ \t\r\n]|$)|^%|\uFEFF|\r(?!\n)|^ *\t|^(?:---|\.\.\.)[^\r\n]|(?:^|[ \t])-[ \t]*(?:#|\r?$)/m

/**
 * The plain value of a YAML document, parsed with js-yaml (ten times faster
 * than yaml on a large file), or REFUSED. It refuses whatever it cannot
 * promise to read exactly as yaml's Document path reads it, or that the
 * Document path would warn about or refuse: anchors and aliases, tags,
 * directives, explicit and non-string keys, scalars and flow collections that
 * span lines, duplicate keys, several documents, more than MAX_DEPTH levels,
 * any js-yaml error or warning.
 */
export function readPlain (text: string): unknown {
  if (REFUSED_TEXT.test(text)) return REFUSED
  // Where each open node's content starts (past spaces, line breaks and comments), and on which line.
  const starts: number[] = []
  const lines: number[] = []
  const listener = (event: 'open' | 'close', s: NodeState): void => {
    if (event === 'open') {
      skipToContent(text, s.position, s.line, starts, lines)
      return
    }
    const start = starts.pop()!
    const line = lines.pop()
    if (s.anchor !== null || (s.tag !== null && s.tag !== PLAIN)) throw REFUSED
    const empty = s.kind === null && s.result === null
    const block = (s.kind === 'mapping' || s.kind === 'sequence') && text[start] !== '[' && text[start] !== '{'
    if (!empty && !block && line !== s.line) throw REFUSED
    if (typeof s.result !== 'string' && (followedByColon(text, s.position) || keyOfFlowMapping(text, start, starts))) throw REFUSED
    // js-yaml takes `"x"#` as a comment; yaml wants a space before it.
    if (text[s.position] === '#' && !isSpace(text[s.position - 1])) throw REFUSED
  }
  const options = { schema: SCHEMA, listener, maxDepth: MAX_DEPTH + 1, onWarning: () => { throw REFUSED } }
  try {
    // An empty document: undefined here, null in yaml's Document.
    return jsyaml.load(text, options) ?? REFUSED
  } catch {
    return REFUSED
  }
}

function isSpace (c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r'
}

/** Pushes where the content of a node opened at `at` starts (past spaces, line breaks and comments), and its line. */
function skipToContent (text: string, at: number, line: number, starts: number[], lines: number[]): void {
  let i = at
  for (; i < text.length; i++) {
    const c = text[i]
    if (c === '\n') {
      line++
    } else if (c === '#') {
      const end = text.indexOf('\n', i)
      i = (end === -1 ? text.length : end) - 1 // the loop's i++ lands on the line break
    } else if (c !== ' ' && c !== '\t' && c !== '\r') {
      break
    }
  }
  starts.push(i)
  lines.push(line)
}

/** Whether a node stands where a key of a flow mapping does (`{x}` or `{a: 1, x}` is a key with no value). */
function keyOfFlowMapping (text: string, start: number, starts: number[]): boolean {
  if (starts.length === 0 || text[starts[starts.length - 1]] !== '{') return false
  let i = start - 1
  while (text[i] === ' ' || text[i] === '\t') i--
  return text[i] === '{' || text[i] === ','
}

/** Whether a node is followed by `:` on its line: it is a key (or the text is invalid). */
function followedByColon (text: string, at: number): boolean {
  let i = at
  while (text[i] === ' ' || text[i] === '\t') i++
  return text[i] === ':'
}
