import http from 'node:http'
import https from 'node:https'
import { setTimeout as sleep } from 'node:timers/promises'
import { gzipSync } from 'node:zlib'
import type { Attributes, AttributeValue, HrTime } from '@opentelemetry/api'
import type { ExportResult } from '@opentelemetry/core'
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base'
import type { Logger } from 'pino'
import { encodeProtobuf } from './protobuf.ts'

/** ExportResultCode of @opentelemetry/core, without loading it for two numbers. */
const SUCCESS = 0
const FAILED = 1

/** What this exporter speaks; `grpc` is refused at start (src/tracing/otel.ts). */
export type Protocol = 'http/protobuf' | 'http/json'

export interface OtlpOptions {
  url: URL
  headers: Record<string, string>
  /** The bound of one export, retries included (OTEL_EXPORTER_OTLP_TIMEOUT). */
  timeoutMs: number
  gzip: boolean
  protocol: Protocol
}

/** The signal-specific variable, else the general one (the OTLP exporter specification's order). */
function setting (env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[`OTEL_EXPORTER_OTLP_TRACES_${name}`] ?? env[`OTEL_EXPORTER_OTLP_${name}`]
  return v === undefined || v.trim() === '' ? undefined : v.trim()
}

/** The protocol asked for, and by which variable: the signal-specific one wins. */
export function protocolSetting (env: NodeJS.ProcessEnv): { variable: string; value: string } | undefined {
  for (const variable of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const value = env[variable]?.trim()
    if (value !== undefined && value !== '') return { variable, value }
  }
  return undefined
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
    gzip: setting(env, 'COMPRESSION') === 'gzip',
    protocol: protocolSetting(env)?.value === 'http/json' ? 'http/json' : 'http/protobuf'
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
export function encodeJson (spans: readonly ReadableSpan[]): string {
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

/** Statuses the OTLP/HTTP specification says to retry; any other failure is final. */
const RETRYABLE = new Set([429, 502, 503, 504])
/** Backoff as opentelemetry-js's exporters: 1 s, ×1.5 each time, at most 5 s, ±20 % jitter; 5 retries at most. */
const RETRIES = 5
const FIRST_BACKOFF_MS = 1000
const MAX_BACKOFF_MS = 5000

class ExportError extends Error {
  constructor (message: string, readonly retryable: boolean, readonly retryAfterMs?: number) {
    super(message)
  }
}

/** Retry-After in seconds or as an HTTP date, in milliseconds from now; undefined when absent or unreadable. */
function retryAfter (value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now())
}

/**
 * An OTLP/HTTP span exporter speaking http/protobuf or http/json: a few dozen
 * lines instead of @opentelemetry/exporter-trace-otlp-*, whose transformer
 * brings the logs and metrics SDKs (10 MB) along. The batch span processor
 * calls it off the request path; a failed batch is retried within
 * `timeoutMs`, then dropped with one warning.
 */
export class OtlpExporter implements SpanExporter {
  #pending = new Set<Promise<void>>()

  constructor (private readonly opts: OtlpOptions, private readonly log: Logger) {}

  export (spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const encoded = this.opts.protocol === 'http/json' ? Buffer.from(encodeJson(spans)) : encodeProtobuf(spans)
    const p = this.#send(this.opts.gzip ? gzipSync(encoded) : encoded).then(
      () => done({ code: SUCCESS }),
      (error: ExportError & { attempts: number }) => {
        this.log.warn({ err: error.message, url: this.opts.url.origin + this.opts.url.pathname, spans: spans.length, attempts: error.attempts }, 'trace export failed; these spans are lost')
        done({ code: FAILED, error })
      })
    this.#pending.add(p)
    void p.finally(() => this.#pending.delete(p))
  }

  async #send (body: Buffer): Promise<void> {
    const deadline = Date.now() + this.opts.timeoutMs
    let backoff = FIRST_BACKOFF_MS
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#post(body, Math.max(1, deadline - Date.now()))
      } catch (err) {
        const e = err as ExportError
        const delay = e.retryAfterMs ?? Math.min(backoff * (0.8 + Math.random() * 0.4), MAX_BACKOFF_MS)
        backoff *= 1.5
        if (!e.retryable || attempt > RETRIES || Date.now() + delay >= deadline) throw Object.assign(e, { attempts: attempt })
        await sleep(delay)
      }
    }
  }

  #post (body: Buffer, timeoutMs: number): Promise<void> {
    const { url, headers, gzip, protocol } = this.opts
    const type = protocol === 'http/json' ? 'application/json' : 'application/x-protobuf'
    return new Promise((resolve, reject) => {
      const req = (url.protocol === 'https:' ? https : http).request(url, {
        method: 'POST',
        headers: { ...headers, 'content-type': type, 'content-length': body.length, ...(gzip ? { 'content-encoding': 'gzip' } : {}) },
        timeout: timeoutMs
      }, res => {
        res.resume()
        res.once('end', () => {
          const status = res.statusCode ?? 0
          if (status >= 200 && status < 300) resolve()
          else reject(new ExportError(`collector answered ${status}`, RETRYABLE.has(status), retryAfter(res.headers['retry-after'])))
        })
      })
      req.once('timeout', () => req.destroy(new ExportError(`no answer within ${timeoutMs} ms`, false)))
      req.once('error', err => reject(err instanceof ExportError ? err : new ExportError(err.message, true)))
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
