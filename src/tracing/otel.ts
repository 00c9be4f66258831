/**
 * OpenTelemetry tracing, loaded (with the SDK) only when an OTLP endpoint is
 * set in the environment: see tracingFromEnv in src/tracing/from-env.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { defaultTextMapGetter, defaultTextMapSetter, diag, DiagLogLevel, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources'
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base'
import type { Logger } from 'pino'
import type { RequestTrace, TracedPlan, TracedTarget, Tracing } from '../proxy/tracing.ts'
import type { Decision } from '../routing/decide.ts'
import type { Upstream } from '../types.ts'
import { OtlpJsonExporter, otlpOptions } from './otlp.ts'

/** package.json is two folders up from src/tracing and dist/tracing; a copied dist (bench/) may have none. */
function packageVersion (): string {
  try {
    return (createRequire(import.meta.url)('../../package.json') as { version: string }).version
  } catch {
    return 'unknown'
  }
}
const version = packageVersion()
const propagator = new W3CTraceContextPropagator()

/** Replaces any traceparent/tracestate among `headers` (undici's flat array) by those of `ctx`. */
function propagate (headers: string[], ctx: Context): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    const name = headers[i].toLowerCase()
    if (name === 'traceparent' || name === 'tracestate') headers.splice(i, 2)
  }
  const carrier: Record<string, string> = {}
  propagator.inject(ctx, carrier, defaultTextMapSetter)
  for (const name in carrier) headers.push(name, carrier[name])
}

/** The longest of the context's path prefixes that the request's path is under. */
function routeOf (d: Decision): string | undefined {
  let route: string | undefined
  for (const p of d.context?.context.paths ?? []) {
    if ((p === '/' || d.canonicalPath === p || d.canonicalPath.startsWith(`${p}/`)) && (route === undefined || p.length > route.length)) route = p
  }
  return route
}

function ended (span: Span, status: number): void {
  span.setAttribute('http.response.status_code', status)
  if (status >= 500 || status === 0) span.setStatus({ code: SpanStatusCode.ERROR })
  span.end()
}

class Traced implements RequestTrace {
  readonly traceId: string
  #fallback: Span | null = null

  constructor (private readonly tracer: Tracer, private readonly span: Span, private readonly ctx: Context, private readonly method: string, private readonly d: Decision) {
    this.traceId = span.spanContext().traceId
  }

  #client (upstream: string, side: string, headers: string[], extra: Attributes): Span {
    const span = this.tracer.startSpan(`${this.method} ${upstream}`, {
      kind: SpanKind.CLIENT,
      attributes: { 'http.request.method': this.method, 'strangler.context': this.d.label, 'strangler.side': side, 'strangler.upstream': upstream, ...extra }
    }, this.ctx)
    propagate(headers, trace.setSpan(this.ctx, span))
    return span
  }

  fallback (next: TracedTarget, reason: string): void {
    this.#fallback = this.#client(next.upstream.name, next.side, next.headers, { 'strangler.fallback': reason })
  }

  shadow (upstream: Upstream, headers: string[]): (status: number) => void {
    const span = this.#client(upstream.name, upstream === this.d.context?.legacy ? 'legacy' : 'new', headers, { 'strangler.shadow': true })
    return status => ended(span, status)
  }

  /** The response to the client has closed. */
  close (res: ServerResponse, plan: TracedPlan): void {
    const { span } = this
    const status = res.writableFinished ? res.statusCode : 0
    if (plan.fellBack !== null) {
      span.setAttributes({ 'strangler.side': 'legacy', 'strangler.upstream': (plan.fallback as TracedTarget).upstream.name, 'strangler.fallback': plan.fellBack })
      if (this.#fallback !== null) ended(this.#fallback, status)
    }
    ended(span, status)
  }
}

/** Tracing with the SDK, configured by the standard OTEL_* variables of `process.env` (the SDK reads them there). */
export function startTracing (log: Logger): Tracing {
  diag.setLogger({
    error: (msg: string) => log.error({ otel: true }, msg),
    warn: (msg: string) => log.warn({ otel: true }, msg),
    info: () => {},
    debug: () => {},
    verbose: () => {}
  }, DiagLogLevel.WARN)
  const protocol = process.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? process.env.OTEL_EXPORTER_OTLP_PROTOCOL
  if (protocol !== undefined && protocol !== 'http/json') log.warn({ protocol }, 'OTLP protocol not supported: spans are sent as http/json (every OTLP/HTTP receiver accepts it)')
  const options = otlpOptions(process.env)
  const resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': 'strangler-proxy', 'service.version': version }))
    .merge(detectResources({ detectors: [envDetector] }))
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OtlpJsonExporter(options, log))] })
  const tracer = provider.getTracer('strangler-proxy', version)
  log.info({ url: options.url.origin + options.url.pathname, service: resource.attributes['service.name'] }, 'tracing: exporting spans over OTLP/HTTP')
  return {
    request (req: IncomingMessage, res: ServerResponse, d: Decision, plan: TracedPlan): RequestTrace {
      const parent = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter)
      const method = req.method as string
      const route = routeOf(d)
      const span = tracer.startSpan(route === undefined ? method : `${method} ${route}`, {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': method,
          'url.path': d.canonicalPath,
          'url.scheme': 'http',
          'http.route': route,
          'strangler.context': d.label,
          'strangler.side': d.side,
          'strangler.decision': d.by,
          'strangler.upstream': d.upstream.name,
          'strangler.request_id': plan.requestId,
          ...(d.segment === null ? undefined : { 'strangler.segment': d.segment.label })
        }
      }, parent)
      const ctx = trace.setSpan(parent, span)
      propagate(plan.target.headers, ctx)
      const traced = new Traced(tracer, span, ctx, method, d)
      res.once('close', () => traced.close(res, plan))
      return traced
    },
    close: () => provider.shutdown()
  }
}
