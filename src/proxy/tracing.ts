import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Decision } from '../routing/decide.ts'
import type { Side, Upstream } from '../types.ts'

/** What a span reads of where a request goes (forward.ts's Target), declared here so that the two files do not import each other. */
export interface TracedTarget {
  /** The upstream's name (never its address). */
  upstream: string
  side: Side
  /** The request's headers as sent upstream: the span's traceparent is set in them. */
  headers: string[]
  fallback: TracedTarget | null
  /** Why `fallback` answered instead, or null. */
  fellBack: string | null
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
  /** A routed request about to go to `target`: its span starts, its traceparent is set in target.headers, and it ends when `res` closes. */
  request (req: IncomingMessage, res: ServerResponse, d: Decision, target: TracedTarget, requestId: string): RequestTrace
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
