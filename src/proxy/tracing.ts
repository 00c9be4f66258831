import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { Decision } from '../routing/decide.ts'
import type { Upstream } from '../types.ts'
import type { Plan, Target } from './plan.ts'

/** The spans of one proxied request, as the proxy's hooks see them. */
export interface RequestTrace {
  /** The trace id for the access log ('' when the request is not traced). */
  readonly traceId: string
  /** `next` is about to answer instead of the side that failed: a span of its own, its traceparent set in next.headers. */
  fallback (next: Target, reason: string): void
  /** A shadow copy about to go to `upstream` with `headers`: a span of its own; call the result with its status (0: no answer) when it ends. */
  shadow (upstream: Upstream, headers: string[]): (status: number) => void
}

/**
 * Per-request tracing. `noTracing` unless OpenTelemetry is configured through
 * its environment (src/tracing/otel.ts, loaded only then).
 */
export interface Tracing {
  /** A routed request about to go to plan.target: its span starts, its traceparent is set in plan.target.headers, and it ends when `res` closes. */
  request (req: IncomingMessage, res: ServerResponse, d: Decision, plan: Plan): RequestTrace
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

/**
 * OpenTelemetry when the environment names an OTLP endpoint (and neither
 * OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none says otherwise); the SDK
 * is loaded only then. `noTracing` otherwise.
 */
export async function tracingFromEnv (env: NodeJS.ProcessEnv, log: Logger): Promise<Tracing> {
  const endpoint = (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '').trim()
  if (endpoint === '' || env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true' || env.OTEL_TRACES_EXPORTER?.trim() === 'none') return noTracing
  return (await import('../tracing/otel.ts')).startTracing(log)
}
