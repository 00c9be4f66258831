import { errors, StranglerError } from '../errors.ts'
import type { Config, Context, Rewrite, Sticky, Upstream } from '../types.ts'
import { answerMap, type AnswerMap } from './answers.ts'
import { compileSegments, type CompiledSegment } from './segments.ts'
import { bucketPrefix, type BucketPrefix } from './sticky.ts'

/** A context ready for the hot path: upstreams resolved, weight in basis
 * points, sticky hash prefix precomputed. */
export interface CompiledContext {
  readonly name: string
  /** Position in `config.contexts`. */
  readonly index: number
  /** Configured weight × 100, an integer 0..10000. */
  readonly weightBp: number
  readonly legacy: Upstream
  readonly new: Upstream
  readonly sticky: Sticky | null
  /** null when the context has none: the hot path then skips them with one check. */
  readonly segments: readonly CompiledSegment[] | null
  readonly rewrite: { readonly legacy: Rewrite | undefined; readonly new: Rewrite | undefined }
  /** How each side's Location and Set-Cookie paths map back; null for a side whose paths are not rewritten. */
  readonly answers: { readonly legacy: AnswerMap | null; readonly new: AnswerMap | null }
  readonly context: Context
  /** murmur3 state of utf8(name + "\0"): see `bucketAfter`. */
  readonly bucketPrefix: BucketPrefix
}

/** The contexts claiming one host (or any host) at one prefix. */
export interface MethodSlot {
  /** The context without `methods`. */
  any: CompiledContext | null
  /** Contexts with `methods`, by upper-cased method. */
  byMethod: Map<string, CompiledContext> | null
}

/** Everything claiming one exact path prefix, indexed by host then method. */
export interface PrefixEntry {
  /** The one context at this prefix when it has neither hosts nor methods:
   * the common case, answered without touching the indexes below. */
  sole: CompiledContext | null
  exactHosts: Map<string, MethodSlot> | null
  /** Keyed by the suffix with its leading dot: `*.example.com` → `.example.com`. */
  wildcardHosts: Map<string, MethodSlot> | null
  anyHost: MethodSlot | null
}

export interface RoutingTable {
  readonly config: Config
  readonly contexts: readonly CompiledContext[]
  readonly byName: ReadonlyMap<string, CompiledContext>
  readonly defaultUpstream: Upstream
  /** The default upstream's answer map: non-null only when its url has a path. */
  readonly defaultAnswers: AnswerMap | null
  /** Every prefix but '/', which is `root`. */
  readonly prefixes: ReadonlyMap<string, PrefixEntry>
  readonly root: PrefixEntry | null
  /** `prefixLengths[n] === 1` when some prefix in `prefixes` is n chars long:
   * lets a lookup skip the boundaries no prefix can end at. */
  readonly prefixLengths: Uint8Array
}

function upstreamNamed (config: Config, name: string, context: string): Upstream {
  const upstream = config.upstreams[name]
  if (upstream === undefined) throw new StranglerError(errors.TABLE_INVALID, [`context ${context}: unknown upstream ${name}`])
  return upstream
}

function compileContext (config: Config, context: Context, index: number): CompiledContext {
  const legacy = upstreamNamed(config, context.legacy, context.name)
  const next = upstreamNamed(config, context.new, context.name)
  return Object.freeze({
    name: context.name,
    index,
    weightBp: Math.round(context.weight * 100),
    legacy,
    new: next,
    sticky: context.sticky,
    segments: compileSegments(context.segments),
    rewrite: Object.freeze({ legacy: context.rewrite.legacy, new: context.rewrite.new }),
    answers: Object.freeze({ legacy: answerMap(legacy, context.rewrite.legacy), new: answerMap(next, context.rewrite.new) }),
    context,
    bucketPrefix: bucketPrefix(context.name)
  })
}

function claim (slot: MethodSlot, methods: string[] | null, compiled: CompiledContext, where: string): void {
  if (methods === null) {
    if (slot.any !== null && slot.any !== compiled) overlap(slot.any, compiled, where)
    slot.any = compiled
    return
  }
  slot.byMethod ??= new Map()
  for (const method of methods) {
    const held = slot.byMethod.get(method)
    if (held !== undefined && held !== compiled) overlap(held, compiled, `${where} ${method}`)
    slot.byMethod.set(method, compiled)
  }
}

function overlap (a: CompiledContext, b: CompiledContext, where: string): never {
  throw new StranglerError(errors.TABLE_INVALID, [`contexts ${a.name} and ${b.name} both claim ${where}`])
}

function slotIn (map: Map<string, MethodSlot>, key: string): MethodSlot {
  let slot = map.get(key)
  if (slot === undefined) {
    slot = { any: null, byMethod: null }
    map.set(key, slot)
  }
  return slot
}

function index (entry: PrefixEntry, compiled: CompiledContext, prefix: string): void {
  const { hosts, methods } = compiled.context
  if (hosts === null) {
    entry.anyHost ??= { any: null, byMethod: null }
    claim(entry.anyHost, methods, compiled, prefix)
    return
  }
  for (const host of hosts) {
    let slot: MethodSlot
    if (host.startsWith('*.')) {
      entry.wildcardHosts ??= new Map()
      slot = slotIn(entry.wildcardHosts, host.slice(1))
    } else {
      entry.exactHosts ??= new Map()
      slot = slotIn(entry.exactHosts, host)
    }
    claim(slot, methods, compiled, `${host}${prefix}`)
  }
}

function markSole (entry: PrefixEntry): void {
  const slot = entry.anyHost
  if (entry.exactHosts === null && entry.wildcardHosts === null && slot !== null && slot.byMethod === null) {
    entry.sole = slot.any
  }
}

/** Compiles a validated config into the immutable table the hot path reads.
 * Throws only on what validation must already have refused. */
export function compileTable (config: Config): RoutingTable {
  const contexts: CompiledContext[] = []
  const byName = new Map<string, CompiledContext>()
  const prefixes = new Map<string, PrefixEntry>()
  let root: PrefixEntry | null = null
  let longest = 0

  for (let i = 0; i < config.contexts.length; i++) {
    const compiled = compileContext(config, config.contexts[i], i)
    contexts.push(compiled)
    byName.set(compiled.name, compiled)
    for (const prefix of compiled.context.paths) {
      let entry: PrefixEntry | null | undefined = prefix === '/' ? root : prefixes.get(prefix)
      if (entry == null) {
        entry = { sole: null, exactHosts: null, wildcardHosts: null, anyHost: null }
        if (prefix === '/') root = entry
        else prefixes.set(prefix, entry)
        if (prefix.length > longest) longest = prefix.length
      }
      index(entry, compiled, prefix)
    }
  }

  const prefixLengths = new Uint8Array(longest + 1)
  for (const [prefix, entry] of prefixes) {
    prefixLengths[prefix.length] = 1
    markSole(entry)
  }
  if (root !== null) markSole(root)

  const defaultUpstream = upstreamNamed(config, config.default, 'default')
  return Object.freeze({
    config,
    contexts: Object.freeze(contexts),
    byName,
    defaultUpstream,
    defaultAnswers: answerMap(defaultUpstream, undefined),
    prefixes,
    root,
    prefixLengths
  })
}
