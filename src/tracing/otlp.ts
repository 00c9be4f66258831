import http from 'node:http'
import https from 'node:https'
import { gzipSync } from 'node:zlib'
import type { Attributes, AttributeValue, HrTime } from '@opentelemetry/api'
import type { ExportResult } from '@opentelemetry/core'
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base'
import type { Logger } from 'pino'

/** ExportResultCode of @opentelemetry/core, without loading it for two numbers. */
const SUCCESS = 0
const FAILED = 1

export interface OtlpOptions {
  url: URL
  headers: Record<string, string>
  timeoutMs: number
  gzip: boolean
}

/** The signal-specific variable, else the general one (the OTLP exporter specification's order). */
function setting (env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[`OTEL_EXPORTER_OTLP_TRACES_${name}`] ?? env[`OTEL_EXPORTER_OTLP_${name}`]
  return v === undefined || v.trim() === '' ? undefined : v.trim()
}

/** `k1=v1,k2=v2`, values percent-encoded (W3C Baggage format, as the specification says). */
function headerList (value: string | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const pair of (value ?? '').split(',')) {
    const eq = pair.indexOf('=')
    if (eq <= 0) continue
    out[pair.slice(0, eq).trim().toLowerCase()] = decodeURIComponent(pair.slice(eq + 1).trim())
  }
  return out
}

/** Where and how to export, from the standard OTEL_EXPORTER_OTLP_* variables. */
export function otlpOptions (env: NodeJS.ProcessEnv): OtlpOptions {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim()
  const base = (env.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'http://localhost:4318').trim()
  const url = new URL(traces !== undefined && traces !== '' ? traces : `${base.replace(/\/+$/, '')}/v1/traces`)
  const timeout = Number(setting(env, 'TIMEOUT') ?? 10_000)
  return {
    url,
    headers: { ...headerList(env.OTEL_EXPORTER_OTLP_HEADERS), ...headerList(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS) },
    timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout : 10_000,
    gzip: setting(env, 'COMPRESSION') === 'gzip'
  }
}

function nanos ([s, ns]: HrTime): string {
  return (BigInt(s) * 1_000_000_000n + BigInt(ns)).toString()
}

function anyValue (v: AttributeValue): Record<string, unknown> {
  if (typeof v === 'string') return { stringValue: v }
  if (typeof v === 'boolean') return { boolValue: v }
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v }
  return { arrayValue: { values: (v as unknown[]).filter(x => x != null).map(x => anyValue(x as AttributeValue)) } }
}

function keyValues (attributes: Attributes): Array<{ key: string; value: Record<string, unknown> }> {
  const out = []
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) out.push({ key, value: anyValue(value) })
  return out
}

/** OTLP/JSON (the protobuf JSON mapping with hex ids) of one batch. */
export function encode (spans: readonly ReadableSpan[]): string {
  const scopes = new Map<string, { scope: { name: string; version?: string }; spans: unknown[] }>()
  for (const s of spans) {
    const key = `${s.instrumentationScope.name}@${s.instrumentationScope.version ?? ''}`
    let scope = scopes.get(key)
    if (scope === undefined) scopes.set(key, scope = { scope: { name: s.instrumentationScope.name, version: s.instrumentationScope.version }, spans: [] })
    const ctx = s.spanContext()
    scope.spans.push({
      traceId: ctx.traceId,
      spanId: ctx.spanId,
      parentSpanId: s.parentSpanContext?.spanId,
      traceState: ctx.traceState?.serialize(),
      name: s.name,
      // The API counts from INTERNAL = 0, OTLP from UNSPECIFIED = 0.
      kind: s.kind + 1,
      startTimeUnixNano: nanos(s.startTime),
      endTimeUnixNano: nanos(s.endTime),
      attributes: keyValues(s.attributes),
      droppedAttributesCount: s.droppedAttributesCount,
      status: s.status.message === undefined ? { code: s.status.code } : { code: s.status.code, message: s.status.message }
    })
  }
  const resource = spans[0]?.resource
  return JSON.stringify({ resourceSpans: [{ resource: { attributes: keyValues(resource?.attributes ?? {}) }, scopeSpans: [...scopes.values()] }] })
}

/**
 * An OTLP/HTTP span exporter speaking http/json: a few dozen lines instead of
 * @opentelemetry/exporter-trace-otlp-http, whose transformer brings the logs
 * and metrics SDKs (10 MB) along.
 */
export class OtlpJsonExporter implements SpanExporter {
  #pending = new Set<Promise<void>>()

  constructor (private readonly opts: OtlpOptions, private readonly log: Logger) {}

  export (spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const p = this.#post(encode(spans)).then(
      () => done({ code: SUCCESS }),
      (error: Error) => {
        this.log.warn({ err: error.message, url: this.opts.url.origin + this.opts.url.pathname, spans: spans.length }, 'trace export failed; these spans are lost')
        done({ code: FAILED, error })
      })
    this.#pending.add(p)
    void p.finally(() => this.#pending.delete(p))
  }

  #post (json: string): Promise<void> {
    const { url, headers, timeoutMs, gzip } = this.opts
    const body = gzip ? gzipSync(json) : Buffer.from(json)
    return new Promise((resolve, reject) => {
      const req = (url.protocol === 'https:' ? https : http).request(url, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'content-length': body.length, ...(gzip ? { 'content-encoding': 'gzip' } : {}) },
        timeout: timeoutMs
      }, res => {
        res.resume()
        res.once('end', () => {
          const status = res.statusCode ?? 0
          if (status >= 200 && status < 300) resolve()
          else reject(new Error(`collector answered ${status}`))
        })
      })
      req.once('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
      req.once('error', reject)
      req.end(body)
    })
  }

  async forceFlush (): Promise<void> {
    await Promise.all(this.#pending)
  }

  async shutdown (): Promise<void> {
    await this.forceFlush()
  }
}
