import { EventEmitter } from 'node:events'
import type { IncomingMessage } from 'node:http'
import type { Dispatcher } from 'undici'
import { forwardPath } from '../routing/rewrite.ts'
import type { CompiledContext } from '../routing/table.ts'
import type { Shadow, Side, Upstream } from '../types.ts'
import { Capture } from './capture.ts'
import { compare, endpointOf, fieldPatterns, matchesAny, Noise, resultOf, type Captured, type Difference, type FieldPattern, type Verdict } from './compare.ts'

/* What shadowing needs of the proxy, declared here so that shadow/ does not import proxy/ (which imports it). */
/** The proxy's connection pools (UpstreamPools). */
interface Pools { get: (u: Upstream) => { pool: Dispatcher } }
/** The request's spans (RequestTrace): a shadow copy gets one of its own; call the result with its status (0: no answer). */
interface ShadowSpans { shadow: (upstream: Upstream, headers: string[]) => (status: number) => void }

/** `noisy`: legacy does not reproduce its own body and nothing finer could be compared (never a match). */
export type ShadowResult = Verdict | 'error' | 'dropped'

export const SHADOW_RESULTS: readonly ShadowResult[] = ['match', 'mismatch', 'noisy', 'error', 'dropped']

export interface ShadowObserver {
  shadowResult (context: string, result: ShadowResult): void
}

export interface DiffRecord {
  result: 'mismatch' | 'noisy' | 'error'
  at: string
  /** Method and path; the query string is never kept (it may hold user data). */
  request: string
  legacyStatus: number
  newStatus: number | null
  differences: Difference[]
}

export interface ShadowStatus {
  percent: number
  /** Comparisons in the recent window (the last 1,000). */
  compared: number
  /** Share of them that matched, 0–1: verified equal, never counting noisy ones; null before the first. */
  matchRate: number | null
  /** Share of them that were noisy, 0–1; null before the first. */
  noisyRate: number | null
  totals: Record<ShadowResult, number>
  noisyFields: string[]
}

export interface ShadowBudget {
  /** Shadow exchanges in flight at most; past it, shadows are dropped and counted. */
  concurrency: number
  /** Bytes of each response kept for comparison; longer bodies are compared by hash. */
  captureBytes: number
}

export const DEFAULT_BUDGET: ShadowBudget = Object.freeze({ concurrency: 32, captureBytes: 256 * 1024 })

const WINDOW = 1000
const KEPT_DIFFS = 20
/** Endpoints whose legacy body was seen to vary, per context; past this, only the request that saw it counts it noisy. */
const MAX_VARYING = 100
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS'])

const WINDOW_CODE: Record<Verdict, number> = { mismatch: 0, match: 1, noisy: 2 }

class ContextStats {
  /** The last WINDOW verdicts, as WINDOW_CODE. */
  readonly window = new Uint8Array(WINDOW)
  filled = 0
  next = 0
  readonly inWindow = [0, 0, 0]
  readonly totals: Record<ShadowResult, number> = { match: 0, mismatch: 0, noisy: 0, error: 0, dropped: 0 }
  readonly diffs: DiffRecord[] = []
  readonly noise = new Noise()
  /** endpointOf() of requests whose legacy body was seen to differ from itself as a whole. */
  readonly varying = new Set<string>()

  compared (verdict: Verdict): void {
    if (this.filled === WINDOW) this.inWindow[this.window[this.next]]--
    else this.filled++
    this.window[this.next] = WINDOW_CODE[verdict]
    this.inWindow[WINDOW_CODE[verdict]]++
    this.next = (this.next + 1) % WINDOW
  }
}

function redactValue (d: Difference, shadow: Shadow, redactFields: readonly FieldPattern[]): Difference {
  const header = d.path.startsWith('header:') ? d.path.slice(7) : null
  const field = d.path.startsWith('body.') ? d.path.slice(5).split('.') : null
  const hidden = (header !== null && shadow.redactHeaders.includes(header)) || (field !== null && redactFields.length > 0 &&
    redactFields.some(p => p.length <= field.length && matchesAny([p], field.slice(0, p.length))))
  return hidden ? { path: d.path, legacy: '[redacted]', new: '[redacted]' } : d
}

/**
 * Dark launch: mirrors a share of legacy-served requests to the new side,
 * compares the answers, and keeps per-context results. It never delays the
 * client: the shadow is sent on its own, and legacy's answer is only observed.
 */
export class Shadows extends EventEmitter {
  #inflight = 0
  readonly #stats = new Map<string, ContextStats>()

  constructor (private readonly pools: Pools, private readonly observer: ShadowObserver, private readonly budget: ShadowBudget = DEFAULT_BUDGET) {
    super()
  }

  get inflight (): number {
    return this.#inflight
  }

  #statsOf (name: string): ContextStats {
    let s = this.#stats.get(name)
    if (s === undefined) {
      s = new ContextStats()
      this.#stats.set(name, s)
    }
    return s
  }

  /** Emits 'result' (context, result) after counting it. */
  #record (name: string, result: ShadowResult): void {
    this.#statsOf(name).totals[result]++
    this.observer.shadowResult(name, result)
    this.emit('result', name, result)
  }

  /**
   * For a request legacy is about to serve: decides whether to shadow it, and if
   * so sends it to new and returns the Capture that legacy's answer is fed into.
   * `withBody`: the request has a body (the plan's body kind is not 'none').
   * `headersFor` gives a copy of the request's upstream headers (built once)
   * for an upstream of the context and its side; each shadow exchange is a
   * span of its own in `trace`.
   */
  start (ctx: CompiledContext, req: IncomingMessage, path: string, query: string, withBody: boolean, headersFor: (u: Upstream, side: Side) => string[], trace: ShadowSpans): Capture | null {
    const shadow = ctx.context.shadow as Shadow
    const method = req.method as string
    if (!shadow.methods.includes(method) || Math.random() * 100 >= shadow.percent) return null
    const stats = this.#statsOf(ctx.name)
    if (this.#inflight >= this.budget.concurrency || (withBody && Number(req.headers['content-length']) > shadow.maxBodyBytes)) {
      this.#record(ctx.name, 'dropped')
      return null
    }
    this.#inflight++
    const learn = SAFE.has(method) && !withBody && shadow.learnNoise > 0 && Math.random() * 100 < shadow.learnNoise
    let waiting = learn ? 3 : 2
    const got: { legacy?: Captured | null; next?: Captured | null; again?: Captured | null } = {}
    const settle = (): void => {
      if (--waiting > 0) return
      this.#inflight--
      this.#compare(ctx, shadow, stats, method, path, got.legacy ?? null, got.next ?? null, got.again ?? null)
    }
    const capture = (slot: 'legacy' | 'next' | 'again'): Capture => new Capture(this.budget.captureBytes, c => {
      got[slot] = c
      settle()
    })
    const send = (u: Upstream, side: 'legacy' | 'new', body: Buffer | null, into: Capture): void => {
      const headers = headersFor(u, side)
      headers.push('x-strangler-shadow', '1')
      this.#send(u, forwardPath(u, ctx.rewrite[side], path, query), method, headers, body, into, trace.shadow(u, headers))
    }
    if (!withBody) {
      send(ctx.new, 'new', null, capture('next'))
      if (learn) send(ctx.legacy, 'legacy', null, capture('again'))
    } else {
      // Hold the body (it is small: checked above, and again as it streams), then send it.
      const parts: Buffer[] = []
      let size = 0
      const next = capture('next')
      const onData = (c: Buffer): void => {
        size += c.length
        if (size > shadow.maxBodyBytes) {
          req.off('data', onData)
          req.off('end', onEnd)
          next.fail(new Error('request body over shadow.maxBodyBytes'))
        } else parts.push(c)
      }
      const onEnd = (): void => send(ctx.new, 'new', Buffer.concat(parts), next)
      req.on('data', onData)
      req.once('end', onEnd)
      req.once('close', () => { if (!req.complete) next.fail(new Error('the client did not send its whole body')) })
    }
    return capture('legacy')
  }

  #send (u: Upstream, path: string, method: string, headers: string[], body: Buffer | null, into: Capture, ended: (status: number) => void): void {
    this.pools.get(u).pool.request({
      origin: u.origin, path, method: method as Dispatcher.HttpMethod, headers, body, headersTimeout: u.timeoutMs, bodyTimeout: u.bodyTimeoutMs
    }).then(res => {
      const raw: string[] = []
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) raw.push(k, Array.isArray(v) ? v.join(', ') : v)
      into.head(res.statusCode, raw)
      res.body.on('data', (c: Buffer) => into.data(c))
      res.body.on('end', () => {
        ended(res.statusCode)
        into.end()
      })
      res.body.on('error', (err: Error) => {
        ended(0)
        into.fail(err)
      })
    }, (err: Error) => {
      ended(0)
      into.fail(err)
    })
  }

  #compare (ctx: CompiledContext, shadow: Shadow, stats: ContextStats, method: string, path: string, legacy: Captured | null, next: Captured | null, again: Captured | null): void {
    const ignore = fieldPatterns(shadow.ignore)
    const request = `${method} ${path}`
    const endpoint = endpointOf(method, path)
    let varies = stats.varying.has(endpoint)
    if (legacy !== null && again !== null && stats.noise.learn(compare(legacy, again, shadow.headers, ignore))) {
      varies = true
      if (stats.varying.size < MAX_VARYING) stats.varying.add(endpoint)
    }
    if (legacy === null || next === null) {
      this.#record(ctx.name, legacy === null ? 'dropped' : 'error')
      if (next === null && legacy !== null) this.#keep(stats, { result: 'error', at: new Date().toISOString(), request, legacyStatus: legacy.status, newStatus: null, differences: [{ path: 'exchange', legacy: legacy.status, new: 'no answer (refused, reset, timeout or body too large)' }] }, shadow)
      return
    }
    const differences = compare(legacy, next, shadow.headers, ignore, stats.noise)
    const result = resultOf(differences, varies)
    stats.compared(result)
    this.#record(ctx.name, result)
    if (result !== 'match') this.#keep(stats, { result, at: new Date().toISOString(), request, legacyStatus: legacy.status, newStatus: next.status, differences }, shadow)
  }

  #keep (stats: ContextStats, record: DiffRecord, shadow: Shadow): void {
    const redactFields = fieldPatterns(shadow.redactFields)
    record.differences = record.differences.map(d => redactValue(d, shadow, redactFields))
    stats.diffs.push(record)
    if (stats.diffs.length > KEPT_DIFFS) stats.diffs.shift()
  }

  status (name: string, shadow: Shadow | null): ShadowStatus | null {
    if (shadow === null) return null
    const s = this.#stats.get(name) ?? new ContextStats()
    const share = (v: Verdict): number | null => s.filled === 0 ? null : s.inWindow[WINDOW_CODE[v]] / s.filled
    return { percent: shadow.percent, compared: s.filled, matchRate: share('match'), noisyRate: share('noisy'), totals: { ...s.totals }, noisyFields: s.noise.fields }
  }

  diffs (name: string): DiffRecord[] {
    return [...(this.#stats.get(name)?.diffs ?? [])].reverse()
  }
}
