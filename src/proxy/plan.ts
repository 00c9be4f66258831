import type { IncomingHttpHeaders } from 'node:http'
import type { Decision } from '../routing/decide.ts'
import { answersFor, type Answers } from '../routing/answers.ts'
import { forwardPath, strippedPrefix } from '../routing/rewrite.ts'
import type { RoutingTable } from '../routing/table.ts'
import type { Capture } from '../shadow/capture.ts'
import type { Side, Upstream } from '../types.ts'
import { isTrusted, requestIdOf, upstreamHost, upstreamRequestHeaders, withHost } from './headers.ts'
import type { BlockList } from 'node:net'
import { untraced, type RequestTrace } from './tracing.ts'

/**
 * What becomes of the request body: there is none; it streams to the upstream
 * as it arrives; or it is held in memory first, so that a fallback can replay it.
 */
export type BodyKind = 'none' | 'streamed' | 'held'

/** One upstream request: where it goes, and with which headers. */
export interface Target {
  readonly upstream: Upstream
  readonly side: Side
  /** Path and query as the upstream receives them. */
  readonly path: string
  /** undici's flat [name, value, …]; tracing sets its traceparent in them. */
  readonly headers: string[]
  /** How this side's Location and Set-Cookie map back to the client's paths; null when its paths are not rewritten. */
  readonly answers: Answers | null
}

/**
 * Everything about a request that does not depend on its answer, decided once
 * when it arrives; the last three fields are filled in as it is dispatched.
 */
export interface Plan {
  /** The `context` metrics label. */
  readonly label: string
  readonly requestId: string
  readonly target: Target
  readonly body: BodyKind
  /** Request body bytes allowed, 0: no limit (a streamed body is cut off past it). */
  readonly maxBodyBytes: number
  /** Where to send the request instead, once, when new fails before its answer starts (the context's `fallback`); null for almost every request. */
  readonly fallback: Target | null
  /** The fallback also replaces a 5xx answer. */
  readonly on5xx: boolean
  /** Legacy serves a context with a shadow: Shadows.start decides whether this request is mirrored. */
  readonly shadow: boolean
  /** A trusted peer's X-Forwarded-Prefix ('' for none): the base of a copy's own prefix (withHost). */
  readonly peerPrefix: string
  /** The request's spans; `untraced` unless tracing is on. */
  trace: RequestTrace
  /** Observes legacy's answer for a shadow comparison; null for almost every request. */
  capture: Capture | null
  /** Set when the fallback answered instead: why (the `reason` of strangler_fallbacks_total). */
  fellBack: string | null
}

/** What plan reads of a request (an IncomingMessage, or a literal in a test). */
export interface PlanRequest {
  readonly method?: string
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: string[]
  readonly socket: { readonly remoteAddress?: string }
}

/** What plan reads of the snapshot (deps.ts). */
export interface PlanSettings {
  readonly table: Pick<RoutingTable, 'defaultAnswers'>
  readonly trust: BlockList | null
  readonly dropUnderscores: boolean
  /** 0: no limit. */
  readonly maxBodyBytes: number
}

/**
 * The third stage, after admit and decide: the upstream request (headers built
 * once; a fallback target gets a copy with legacy's Host and prefix), what becomes of the
 * body, and whether a shadow may mirror it. `shadowing`: shadows are wired.
 */
export function plan (d: Decision, req: PlanRequest, settings: PlanSettings, shadowing: boolean): Plan {
  const peer = req.socket.remoteAddress
  const trusted = isTrusted(settings.trust, peer)
  const requestId = requestIdOf(req.headers['x-request-id'], trusted)
  const { upstream, context: ctx } = d
  // Not rewrite[d.side]: a keyed load whose key varies is megamorphic in V8, on every request.
  const prefix = ctx === null ? '' : strippedPrefix(d.side === 'new' ? ctx.rewrite.new : ctx.rewrite.legacy, d.canonicalPath)
  const headers = upstreamRequestHeaders(req.rawHeaders, upstream.host, peer, trusted, upstream.preserveHost, settings.dropUnderscores, requestId, prefix)
  const forwardedHost = trusted ? req.headers['x-forwarded-host'] : undefined
  const peerPrefix = trusted ? req.headers['x-forwarded-prefix'] as string | undefined ?? '' : ''
  const te = req.headers['transfer-encoding']
  const length = req.headers['content-length']
  const bodyless = te === undefined && (length === undefined || length === '0')
  let fallback: Target | null = null
  let on5xx = false
  const fb = d.side === 'new' && ctx !== null ? ctx.context.fallback ?? null : null
  // A body is replayable only when it is small enough to hold, and its size is known before it arrives.
  if (fb !== null && fb.methods.includes(req.method as string) && (bodyless || (te === undefined && Number(length) <= fb.maxBodyBytes))) {
    const { legacy, rewrite, answers } = ctx as NonNullable<typeof ctx>
    const path = forwardPath(legacy, rewrite.legacy, d.canonicalPath, d.query)
    const legacyPrefix = strippedPrefix(rewrite.legacy, d.canonicalPath)
    const copy = withHost(headers, upstreamHost(legacy, req.headers.host), legacyPrefix === prefix ? null : legacyPrefix, peerPrefix)
    fallback = { upstream: legacy, side: 'legacy', path, headers: copy, answers: answersFor(answers.legacy, req.headers.host, forwardedHost) }
    on5xx = fb.on5xx
  }
  return {
    label: d.label,
    requestId,
    target: { upstream, side: d.side, path: d.path, headers, answers: answersFor(ctx === null ? settings.table.defaultAnswers : d.side === 'new' ? ctx.answers.new : ctx.answers.legacy, req.headers.host, forwardedHost) },
    body: bodyless ? 'none' : fallback === null ? 'streamed' : 'held',
    maxBodyBytes: settings.maxBodyBytes,
    fallback,
    on5xx,
    shadow: shadowing && d.side === 'legacy' && ctx !== null && ctx.context.shadow != null,
    peerPrefix,
    trace: untraced,
    capture: null,
    fellBack: null
  }
}

/**
 * A copy of the request's upstream headers (built once, in plan) for another
 * upstream of its context, a shadow's: that upstream's Host, and its side's
 * X-Forwarded-Prefix when it strips another prefix than the request's side.
 */
export function headersFor (p: Plan, d: Decision, u: Upstream, side: Side, clientHost: string | undefined): string[] {
  const rewrite = (d.context as NonNullable<Decision['context']>).rewrite
  const prefix = strippedPrefix(rewrite[side], d.canonicalPath)
  return withHost(p.target.headers, upstreamHost(u, clientHost), prefix === strippedPrefix(rewrite[d.side], d.canonicalPath) ? null : prefix, p.peerPrefix)
}
