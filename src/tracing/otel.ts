/**
 * OpenTelemetry tracing, loaded (with the SDK) only when an OTLP endpoint is
 * set in the environment: see tracingFromEnv in src/tracing/from-env.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { defaultTextMapGetter, defaultTextMapSetter, diag, DiagLogLevel, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type TextMapPropagator, type Tracer } from '@opentelemetry/api'
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core'
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources'
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base'
import type { Logger } from 'pino'
import { noTracing, type RequestTrace, type TracedPlan, type TracedTarget, type Tracing } from '../proxy/tracing.ts'
import type { Decision } from '../routing/decide.ts'
import type { Upstream } from '../types.ts'
import { OtlpExporter, otlpOptions, protocolSetting } from './otlp.ts'

/** package.json is two folders up from src/tracing and dist/tracing; a copied dist (bench/) may have none. */
function packageVersion (): string {
  try {
    return (createRequire(import.meta.url)('../../package.json') as { version: string }).version
  } catch {
    return 'unknown'
  }
}
const version = packageVersion()

const PROPAGATORS: Record<string, () => TextMapPropagator> = {
  tracecontext: () => new W3CTraceContextPropagator(),
  baggage: () => new W3CBaggagePropagator()
}

/**
 * OTEL_PROPAGATORS (`tracecontext` when unset): null for `none`, or when no
 * name is one we have. Unknown names are warned about once and ignored.
 */
function propagatorFromEnv (value: string | undefined, log: Logger): TextMapPropagator | null {
  const names = [...new Set((value ?? '').split(',').map(n => n.trim().toLowerCase()).filter(n => n !== ''))]
  if (names.length === 0) names.push('tracecontext')
  const unknown = names.filter(n => n !== 'none' && PROPAGATORS[n] === undefined)
  if (unknown.length > 0) log.warn({ variable: 'OTEL_PROPAGATORS', unknown }, `OTEL_PROPAGATORS: ${unknown.join(', ')} not supported, ignored (supported: tracecontext, baggage, none)`)
  if (names.includes('none')) return null
  const known = names.filter(n => PROPAGATORS[n] !== undefined).map(n => PROPAGATORS[n]())
  return known.length === 0 ? null : known.length === 1 ? known[0] : new CompositePropagator({ propagators: known })
}

/** Replaces the headers `propagator` owns among `headers` (undici's flat array) by those of `ctx`. */
function propagate (propagator: TextMapPropagator, fields: ReadonlySet<string>, headers: string[], ctx: Context): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (fields.has(headers[i].toLowerCase())) headers.splice(i, 2)
  }
  const carrier: Record<string, string> = {}
  propagator.inject(ctx, carrier, defaultTextMapSetter)
  for (const name in carrier) headers.push(name, carrier[name])
}

/** Propagation as configured: with none, trace headers are the client's and pass as sent. */
interface Propagation {
  extract: (req: IncomingMessage) => Context
  inject: (headers: string[], ctx: Context) => void
}

function propagationOf (propagator: TextMapPropagator | null): Propagation {
  if (propagator === null) return { extract: () => ROOT_CONTEXT, inject: () => {} }
  const fields = new Set(propagator.fields().map(f => f.toLowerCase()))
  return {
    extract: req => propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter),
    inject: (headers, ctx) => propagate(propagator, fields, headers, ctx)
  }
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

  constructor (private readonly tracer: Tracer, private readonly propagation: Propagation, private readonly span: Span, private readonly ctx: Context, private readonly method: string, private readonly d: Decision) {
    this.traceId = span.spanContext().traceId
  }

  #client (upstream: string, side: string, headers: string[], extra: Attributes): Span {
    const span = this.tracer.startSpan(`${this.method} ${upstream}`, {
      kind: SpanKind.CLIENT,
      attributes: { 'http.request.method': this.method, 'strangler.context': this.d.label, 'strangler.side': side, 'strangler.upstream': upstream, ...extra }
    }, this.ctx)
    this.propagation.inject(headers, trace.setSpan(this.ctx, span))
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
  const asked = protocolSetting(process.env)
  if (asked?.value === 'grpc') {
    // A gRPC receiver listens on 4317 and would refuse OTLP/HTTP: sending it anyway would only fail later, batch by batch.
    log.warn(asked, `${asked.variable}=grpc is not supported (OTLP/HTTP only: http/protobuf or http/json, port 4318): tracing is off`)
    return noTracing
  }
  if (asked !== undefined && asked.value !== 'http/protobuf' && asked.value !== 'http/json') {
    log.warn(asked, `${asked.variable}=${asked.value} is not an OTLP protocol: spans are sent as http/protobuf`)
  }
  const options = otlpOptions(process.env)
  const propagation = propagationOf(propagatorFromEnv(process.env.OTEL_PROPAGATORS, log))
  const resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': 'strangler-proxy', 'service.version': version }))
    .merge(detectResources({ detectors: [envDetector] }))
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OtlpExporter(options, log))] })
  const tracer = provider.getTracer('strangler-proxy', version)
  log.info({ url: options.url.origin + options.url.pathname, protocol: options.protocol, service: resource.attributes['service.name'] }, 'tracing: exporting spans over OTLP/HTTP')
  return {
    request (req: IncomingMessage, res: ServerResponse, d: Decision, plan: TracedPlan): RequestTrace {
      const parent = propagation.extract(req)
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
      propagation.inject(plan.target.headers, ctx)
      const traced = new Traced(tracer, propagation, span, ctx, method, d)
      res.once('close', () => traced.close(res, plan))
      return traced
    },
    // A batch the collector refused was warned about by the exporter; it must not fail the drain (serve would exit 1).
    close: () => provider.shutdown().catch(() => {})
  }
}
