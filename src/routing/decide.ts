import type { Side, Upstream } from '../types.ts'
import { canonicalize } from './path.ts'
import { matchContext, normalizeHost } from './match.ts'
import { forwardPath } from './rewrite.ts'
import { matchSegment, type CompiledSegment } from './segments.ts'
import { pickSide } from './split.ts'
import { stickyKey } from './sticky.ts'
import type { CompiledContext, RoutingTable } from './table.ts'

/** Where one request goes. Made once, when the request arrives, from one table snapshot. */
export interface Decision {
  /** null when no context matched and the default upstream serves it. */
  context: CompiledContext | null
  /** The `context` metrics label: the context's name, or 'default'. */
  label: string
  side: Side
  upstream: Upstream
  /** Path and query as the upstream receives them. */
  path: string
  /** The canonical request path and its query ('' or '?…'), before any rewrite. */
  canonicalPath: string
  query: string
  /** What picked the side: no context matched, a preview token, a segment, the sticky key's bucket, or the weight alone. */
  by: 'default' | 'preview' | 'segment' | 'sticky' | 'weight'
  /** The segment that picked the side, when `by` is 'segment'. */
  segment: CompiledSegment | null
}

/** The effective weight of a context in basis points (0–10000): configured, or overridden at run time; ROLLED_BACK for a rollback. */
export type EffectiveWeight = (ctx: CompiledContext) => number

/** The effective weight of a rolled-back context: everything to legacy, its segments included. */
export const ROLLED_BACK = -1

export const configuredWeight: EffectiveWeight = ctx => ctx.weightBp

type Headers = Record<string, string | string[] | undefined>

/** The side a valid preview token names for this context, or null (no token, or one that does not apply). */
export type Preview = (ctx: CompiledContext, headers: Headers) => Side | null

export const noPreview: Preview = () => null

/** null when the path is not canonical (the request gets 400 and reaches no upstream). */
export function decide (
  table: RoutingTable, weightOf: EffectiveWeight, method: string, rawUrl: string, headers: Headers, preview: Preview = noPreview
): Decision | null {
  const canonical = canonicalize(rawUrl)
  if (canonical === null) return null
  const host = normalizeHost(headers.host as string | undefined)
  const ctx = matchContext(table, host, method, canonical.path)
  if (ctx === null) {
    const upstream = table.defaultUpstream
    return { context: null, label: 'default', side: 'legacy', upstream, path: forwardPath(upstream, undefined, canonical.path, canonical.query), canonicalPath: canonical.path, query: canonical.query, by: 'default', segment: null }
  }
  let side = preview(ctx, headers)
  let by: Decision['by'] = 'preview'
  let segment: CompiledSegment | null = null
  if (side === null) {
    const weightBp = weightOf(ctx)
    if (ctx.segments !== null && weightBp !== ROLLED_BACK) segment = matchSegment(ctx.segments, headers, canonical.query)
    if (segment !== null) {
      side = segment.side
      by = 'segment'
    } else {
      const key = ctx.sticky === null ? undefined : stickyKey(ctx.sticky, headers)
      side = pickSide(ctx, weightBp, key)
      by = key === undefined ? 'weight' : 'sticky'
    }
  }
  const upstream = side === 'new' ? ctx.new : ctx.legacy
  return { context: ctx, label: ctx.name, side, upstream, path: forwardPath(upstream, side === 'new' ? ctx.rewrite.new : ctx.rewrite.legacy, canonical.path, canonical.query), canonicalPath: canonical.path, query: canonical.query, by, segment }
}
