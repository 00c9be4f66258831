import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Decision } from '../routing/decide.ts'
import type { Side, Upstream } from '../types.ts'

/** What a span reads of one upstream request (plan.ts's Target), declared here so that the two files do not import each other. */
export interface TracedTarget {
  readonly upstream: Upstream
  readonly side: Side
  /** As sent upstream: the span's traceparent is set in them. */
  readonly headers: string[]
}

/** What a span reads of a request's plan. */
export interface TracedPlan {
  readonly requestId: string
  readonly target: TracedTarget
  readonly fallback: TracedTarget | null
  /** Why `fallback` answered instead, or null. */
  readonly fellBack: string | null
}

/** The spans of one proxied request, as the proxy's hooks see them. */
export interface RequestTrace {
  /** The trace id for the access log ('' when the request is not traced). */
  readonly traceId: string
  /** `next` is about to answer instead of the side that failed: a span of its own, its traceparent set in next.headers. */
  fallback (next: TracedTarget, reason: string): void
  /** A shadow copy about to go to `upstream` with `headers`: a span of its own; call the result with its status (0: no answer) when it ends. */
  shadow (upstream: Upstream, headers: string[]): (status: number) => void
}

/**
 * Per-request tracing. `noTracing` unless OpenTelemetry is configured through
 * its environment (src/tracing/otel.ts, loaded only then: src/tracing/from-env.ts).
 */
export interface Tracing {
  /** A routed request about to go to plan.target: its span starts, its traceparent is set in plan.target.headers, and it ends when `res` closes. */
  request (req: IncomingMessage, res: ServerResponse, d: Decision, plan: TracedPlan): RequestTrace
  /** Exports what is still buffered; the proxy calls it once, after draining. */
  close (): Promise<void>
}

const shadowEnded = (_status: number): void => {}

export const untraced: RequestTrace = Object.freeze({
  traceId: '',
  fallback () {},
  shadow: () => shadowEnded
})

export const noTracing: Tracing = Object.freeze({
  request: () => untraced,
  close: async () => {}
})
