import client, { Counter, Gauge, Registry, type Metric } from 'prom-client'
import type { UpstreamErrorReason } from './proxy/forward.ts'
import type { ProxyObserver } from './proxy/server.ts'
import type { Side } from './types.ts'

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx']
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/**
 * The responses of one (context, side), counted in plain arrays. prom-client
 * hashes a series' labels on every inc() and observe() (about 2 µs per
 * response); these are turned into samples only when the metrics are read.
 */
class Responses {
  readonly byClass = new Float64Array(STATUS_CLASSES.length)
  /** Observations per bucket, not cumulative; the last one is +Inf. */
  readonly buckets = new Float64Array(DURATION_BUCKETS.length + 1)
  count = 0
  sum = 0

  constructor (readonly context: string, readonly side: Side) {}

  record (status: number, seconds: number): void {
    this.byClass[Math.min(Math.floor(status / 100), 5) - 1]++
    let b = 0
    while (b < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[b]) b++
    this.buckets[b]++
    this.count++
    this.sum += seconds
  }

  requestSamples (): Sample[] {
    const out: Sample[] = []
    for (let i = 0; i < STATUS_CLASSES.length; i++) {
      if (this.byClass[i] > 0) out.push({ value: this.byClass[i], labels: { context: this.context, side: this.side, code: STATUS_CLASSES[i] } })
    }
    return out
  }

  durationSamples (name: string): Sample[] {
    const labels = { context: this.context, side: this.side }
    const out: Sample[] = []
    let cumulative = 0
    for (let b = 0; b < DURATION_BUCKETS.length; b++) {
      cumulative += this.buckets[b]
      out.push({ value: cumulative, labels: { le: DURATION_BUCKETS[b], ...labels }, metricName: `${name}_bucket` })
    }
    out.push(
      { value: this.count, labels: { le: '+Inf', ...labels }, metricName: `${name}_bucket` },
      { value: this.sum, labels, metricName: `${name}_sum` },
      { value: this.count, labels, metricName: `${name}_count` }
    )
    return out
  }
}

interface Sample {
  value: number
  labels: Record<string, string | number>
  metricName?: string
}

/**
 * A metric whose samples are computed when read. prom-client's Registry reads
 * a metric through get() alone; its cluster aggregator registers plain objects
 * like this one too.
 */
function computed (name: string, help: string, type: 'counter' | 'gauge' | 'histogram', samples: (name: string) => Sample[]): Metric {
  // The Registry renames a counter in place for OpenMetrics output: get() reports the current name.
  const metric = { name, help, type, aggregator: 'sum', get: async () => ({ name: metric.name, help, type, aggregator: 'sum', values: samples(name) }) }
  return metric as unknown as Metric
}

/** Every metric strangler-proxy exports, on one registry per process (DESIGN.md names). */
export class Metrics implements ProxyObserver {
  readonly registry = new Registry()
  /** Per side, by context. */
  readonly #responses: Record<Side, Map<string, Responses>> = { legacy: new Map(), new: new Map() }
  readonly upstreamErrors = new Counter({ name: 'strangler_upstream_errors_total', help: 'Failed upstream exchanges, by context, side and reason.', labelNames: ['context', 'side', 'reason'] as const, registers: [this.registry] })
  readonly reloads = new Counter({ name: 'strangler_config_reloads_total', help: 'Config reloads, by result.', labelNames: ['result'] as const, registers: [this.registry] })
  readonly configInfo = new Gauge({ name: 'strangler_config_info', help: 'The config in force (value 1), by hash.', labelNames: ['hash'] as const, registers: [this.registry] })
  readonly shadow = new Counter({ name: 'strangler_shadow_requests_total', help: 'Shadowed requests, by context and result: match, mismatch, error (new did not answer), dropped (over budget or body too large).', labelNames: ['context', 'result'] as const, registers: [this.registry] })
  readonly preview = new Counter({ name: 'strangler_preview_requests_total', help: 'Requests carrying a preview token, by context and result: accepted, or ignored as malformed, bad_signature, expired, wrong_context.', labelNames: ['context', 'result'] as const, registers: [this.registry] })
  readonly fallbacks = new Counter({ name: 'strangler_fallbacks_total', help: 'Requests retried on legacy after new failed before answering, by context and reason: refused, reset, timeout, 5xx.', labelNames: ['context', 'reason'] as const, registers: [this.registry] })
  readonly guardTrips = new Counter({ name: 'strangler_guard_trips_total', help: 'Automatic rollbacks by a context\'s guard.', labelNames: ['context'] as const, registers: [this.registry] })
  readonly rejected = new Counter({ name: 'strangler_rejected_requests_total', help: 'Requests refused before routing, by reason.', labelNames: ['reason'] as const, registers: [this.registry] })

  /**
   * `role`: 'all' in a single process; with workers, the primary is 'control'
   * (reloads, config, weights) and each worker 'data' (requests, process
   * metrics), and the primary aggregates them. Series a role does not own are
   * never touched, so the aggregate has each exactly once.
   */
  constructor ({ processMetrics = true, role = 'all' }: { processMetrics?: boolean; role?: 'all' | 'control' | 'data' } = {}) {
    this.registry.registerMetric(computed('strangler_requests_total', 'Proxied requests, by context, the side that served them and status class.', 'counter',
      () => this.#allResponses().flatMap(r => r.requestSamples())))
    this.registry.registerMetric(computed('strangler_request_duration_seconds', 'Time from request arrival to the end of the response, by context and side.', 'histogram',
      name => this.#allResponses().flatMap(r => r.durationSamples(name))))
    if (processMetrics && role !== 'control') client.collectDefaultMetrics({ register: this.registry })
    if (role !== 'data') for (const result of ['success', 'failure']) this.reloads.labels(result).inc(0)
  }

  #allResponses (): Responses[] {
    return [...this.#responses.legacy.values(), ...this.#responses.new.values()]
  }

  response (context: string, side: Side, status: number, seconds: number): void {
    if (status < 100) return
    const bySide = this.#responses[side]
    let r = bySide.get(context)
    if (r === undefined) bySide.set(context, r = new Responses(context, side))
    r.record(status, seconds)
  }

  upstreamError (context: string, side: Side, reason: UpstreamErrorReason): void {
    this.upstreamErrors.labels(context, side, reason).inc()
  }

  shadowResult (context: string, result: string): void {
    this.shadow.labels(context, result).inc()
  }

  previewResult (context: string, result: string): void {
    this.preview.labels(context, result).inc()
  }

  fallback (context: string, reason: string): void {
    this.fallbacks.labels(context, reason).inc()
  }

  rejectedRequest (reason: string): void {
    this.rejected.labels(reason).inc()
  }

  /** strangler_state_store_up, read at each scrape (the primary's, with workers). */
  watchStore (up: () => boolean): void {
    new Gauge({ name: 'strangler_state_store_up', help: 'Whether the runtime-override store is reachable: 1 yes, 0 no (with Redis: admin changes are refused, replicas serve their last known overrides).', registers: [this.registry], collect () { this.set(up() ? 1 : 0) } })
  }

  setConfig (hash: string): void {
    this.configInfo.reset()
    this.configInfo.labels(hash).set(1)
  }

  /**
   * strangler_context_weight_percent, computed at each scrape from `weights`
   * (the control process's): a reload of 10,000 contexts sets no series.
   */
  exportWeights (weights: () => Array<{ context: string; configured: number; effective: number }>): void {
    this.registry.registerMetric(computed('strangler_context_weight_percent', 'Percent of a context\'s traffic sent to new: as configured, and in effect after runtime overrides.', 'gauge',
      () => weights().flatMap(w => [
        { labels: { context: w.context, source: 'config' }, value: w.configured },
        { labels: { context: w.context, source: 'effective' }, value: w.effective }
      ])))
  }
}
