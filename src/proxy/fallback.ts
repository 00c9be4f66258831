import { classify, send, type Exchange, type ForwardObserver } from './forward.ts'
import type { Gate, GatedHandler } from './gate.ts'
import type { Plan, Target } from './plan.ts'
import type { UpstreamPools } from './upstreams.ts'

/**
 * The context's `fallback`: new's exchange goes through this handler, which
 * wraps the one that answers the client, as undici's RetryHandler wraps the
 * handler it retries for. When new refuses the connection, resets it or times
 * out before anything of its answer reached the client (or answers 5xx, with
 * `on5xx`), the request goes once to legacy instead, its events straight to
 * `answer`; this first exchange then ends silently.
 */
export class FallbackHandler implements GatedHandler {
  gate: Gate | null = null
  #abort: ((err?: Error) => void) | null = null
  #retried = false

  constructor (
    private readonly answer: Exchange,
    private readonly plan: Plan,
    private readonly pools: UpstreamPools,
    private readonly observer: ForwardObserver,
    private readonly method: string,
    /** The body to replay: null (none) or held in memory (plan's 'held'). */
    private readonly body: Buffer | null
  ) {}

  abandoned (): boolean {
    return this.answer.abandoned()
  }

  /** Never sent at all: answered 503, never retried (legacy is usually the one to protect). */
  queueTimeout (streamed: boolean): void {
    this.answer.queueTimeout(streamed)
  }

  onConnect (abort: (err?: Error) => void): void {
    this.#abort = abort
    this.answer.onConnect(abort)
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode >= 500 && this.plan.on5xx && this.#retry('5xx')) {
      this.#abort?.()
      return false
    }
    return this.answer.onHeaders(statusCode, rawHeaders, resume, statusText)
  }

  onData (chunk: Buffer): boolean {
    return this.answer.onData(chunk)
  }

  onComplete (): void {
    this.#release()
    if (!this.#retried) this.answer.onComplete()
  }

  onError (err: Error): void {
    this.#release()
    if (this.#retried) return
    const { reason } = classify(err as NodeJS.ErrnoException)
    if ((reason === 'refused' || reason === 'reset' || reason === 'timeout') && this.answer.restartable) {
      this.observer.upstreamError(this.plan.label, this.answer.side, reason)
      this.#retry(reason)
      return
    }
    this.answer.onError(err)
  }

  /** This exchange's connection is free; the retry, if any, has a gate of its own. */
  #release (): void {
    this.gate?.release()
    this.gate = null
  }

  #retry (reason: string): boolean {
    if (this.#retried || !this.answer.restartable) return false
    const { plan } = this
    const next = plan.fallback as Target
    this.#retried = true
    plan.fellBack = reason
    this.observer.fallback(plan.label, reason)
    plan.trace.fallback(next, reason)
    this.answer.side = next.side
    this.answer.answers = next.answers
    send(this.pools, next, this.method, this.body, this.answer)
    return true
  }
}
