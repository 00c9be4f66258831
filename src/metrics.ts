import { setImmediate as turn } from 'node:timers/promises'
import client, { Counter, Gauge, Registry, type Metric, type RegistryContentType } from 'prom-client'
import { FALLBACK_REASONS, UPSTREAM_ERROR_REASONS, type UpstreamErrorReason } from './proxy/forward.ts'
import { REJECT_REASONS, type ProxyObserver } from './proxy/deps.ts'
import { SHADOW_RESULTS } from './shadow/shadows.ts'
import type { Config, Side } from './types.ts'

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx']
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/**
 * The responses of one (context, side), counted in plain arrays. prom-client
 * hashes a series' labels on every inc() and observe() (about 2 µs per
 * response); these are turned into samples only when the metrics are read.
 */
/** One (context, side)'s responses as a worker sends them to the primary: compact, plain JSON. */
export type ResponsesRow = [context: string, side: Side, byClass: number[], buckets: number[], count: number, sum: number]

/** What a worker answers when the primary reads the metrics. */
export interface WorkerMetrics {
  /** prom-client JSON of every metric but the per-context response families. */
  families: object[]
  rows: ResponsesRow[]
}

/** The responses of several workers added up, by (context, side). */
export function mergeRows (lists: readonly ResponsesRow[][]): Responses[] {
  const merged = new Map<string, Responses>()
  for (const rows of lists) {
    for (const row of rows) {
      const key = `${row[1]}\0${row[0]}`
      let r = merged.get(key)
      if (r === undefined) merged.set(key, r = new Responses(row[0], row[1]))
      r.add(row)
    }
  }
  return [...merged.values()]
}

class Responses {
  readonly byClass = new Float64Array(STATUS_CLASSES.length)
  /** Observations per bucket, not cumulative; the last one is +Inf. */
  readonly buckets = new Float64Array(DURATION_BUCKETS.length + 1)
  count = 0
  sum = 0

  constructor (readonly context: string, readonly side: Side) {}

  row (): ResponsesRow {
    return [this.context, this.side, Array.from(this.byClass), Array.from(this.buckets), this.count, this.sum]
  }

  add ([, , byClass, buckets, count, sum]: ResponsesRow): void {
    for (let i = 0; i < this.byClass.length; i++) this.byClass[i] += byClass[i] ?? 0
    for (let i = 0; i < this.buckets.length; i++) this.buckets[i] += buckets[i] ?? 0
    this.count += count
    this.sum += sum
  }

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

/** Series handled between two turns of the event loop: a scrape of 10,000 contexts must not hold up requests. */
const CHUNK = 256

/** prom-client's spelling of a sample value and of escaped text, so that both renderings match. */
function valueText (value: number): string {
  if (Number.isNaN(value)) return 'Nan'
  if (!Number.isFinite(value)) return value < 0 ? '-Inf' : '+Inf'
  return `${value}`
}

const escaped = (text: string): string => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')

function sampleLine (name: string, sample: Sample): string {
  let labels = ''
  for (const key in sample.labels) {
    const value = sample.labels[key]
    labels += `${labels === '' ? '' : ','}${key}="${typeof value === 'string' ? escaped(value).replace(/"/g, '\\"') : value}"`
  }
  return `${sample.metricName ?? name}${labels === '' ? '' : `{${labels}}`} ${valueText(sample.value)}`
}

/**
 * A metric whose samples are computed when read, one group per item (a
 * context and side, say). prom-client's Registry reads a metric through get()
 * alone, and its cluster aggregator registers plain objects like this one too;
 * `text()` renders it as the Registry would, a chunk of items at a time.
 */
class Computed<T> {
  readonly aggregator = 'sum'

  constructor (
    public name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    private readonly items: () => readonly T[],
    private readonly samplesOf: (item: T, name: string) => Sample[],
    /** Its items are the responses of a (context, side): a worker's to count. */
    readonly ofResponses = false,
    private readonly baseName = name
  ) {}

  /**
   * `override`: items other than this process's own (the primary's sum of its
   * workers'). The Registry renames a counter in place for OpenMetrics output:
   * get() reports the current name.
   */
  async get (override?: readonly T[]): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const values: Sample[] = []
    const items = override ?? this.items()
    for (let i = 0; i < items.length; i++) {
      if (i > 0 && i % CHUNK === 0) await turn()
      for (const sample of this.samplesOf(items[i], this.baseName)) values.push(sample)
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  /**
   * The Prometheus text of this metric, as `Registry.getSingleMetricAsString`
   * gives it, in pieces of CHUNK items with a loop turn between them.
   */
  async * text (override?: readonly T[]): AsyncGenerator<string> {
    const items = override ?? this.items()
    const name = escaped(this.name)
    yield `# HELP ${name} ${escaped(this.help)}\n# TYPE ${name} ${this.type}`
    for (let from = 0; from < items.length; from += CHUNK) {
      if (from > 0) await turn()
      const lines: string[] = []
      for (let i = from; i < Math.min(from + CHUNK, items.length); i++) {
        for (const sample of this.samplesOf(items[i], this.baseName)) lines.push(sampleLine(this.name, sample))
      }
      if (lines.length > 0) yield `\n${lines.join('\n')}`
    }
  }
}

/** Every metric strangler-proxy exports, on one registry per process (DESIGN.md names). */
export class Metrics implements ProxyObserver {
  readonly registry = new Registry()
  /** Per side, by context. */
  readonly #responses: Record<Side, Map<string, Responses>> = { legacy: new Map(), new: new Map() }
  readonly upstreamErrors = new Counter({ name: 'strangler_upstream_errors_total', help: 'Failed upstream exchanges, by context, side and reason.', labelNames: ['context', 'side', 'reason'] as const, registers: [this.registry] })
  readonly reloads = new Counter({ name: 'strangler_config_reloads_total', help: 'Config reloads, by result.', labelNames: ['result'] as const, registers: [this.registry] })
  readonly configInfo = new Gauge({ name: 'strangler_config_info', help: 'The config in force (value 1), by hash.', labelNames: ['hash'] as const, registers: [this.registry] })
  readonly shadow = new Counter({ name: 'strangler_shadow_requests_total', help: 'Shadowed requests, by context and result: match, mismatch, noisy (legacy does not reproduce its own body, so it could not be verified), error (new did not answer), dropped (over budget or body too large).', labelNames: ['context', 'result'] as const, registers: [this.registry] })
  readonly preview = new Counter({ name: 'strangler_preview_requests_total', help: 'Requests carrying a preview token, by context and result: accepted, or ignored as malformed, bad_signature, expired, wrong_context.', labelNames: ['context', 'result'] as const, registers: [this.registry] })
  readonly segments = new Counter({ name: 'strangler_segment_requests_total', help: 'Requests a segment sent to its side, by context, segment (its name, or its index from 0) and side.', labelNames: ['context', 'segment', 'side'] as const, registers: [this.registry] })
  readonly fallbacks = new Counter({ name: 'strangler_fallbacks_total', help: 'Requests retried on legacy after new failed before answering, by context and reason: refused, reset, timeout, 5xx.', labelNames: ['context', 'reason'] as const, registers: [this.registry] })
  readonly guardTrips = new Counter({ name: 'strangler_guard_trips_total', help: 'Automatic rollbacks by a context\'s guard.', labelNames: ['context'] as const, registers: [this.registry] })
  readonly #shadowed = new Set<string>()
  readonly rejected = new Counter({ name: 'strangler_rejected_requests_total', help: 'Requests refused before routing, by reason.', labelNames: ['reason'] as const, registers: [this.registry] })
  readonly lastReloadOk = new Gauge({ name: 'strangler_config_last_reload_successful', help: 'Whether the last load of the config file succeeded: 1 yes, 0 no (the last good config keeps serving).', registers: [this.registry] })
  readonly #role: 'all' | 'control' | 'data'

  /**
   * `role`: 'all' in a single process; with workers, the primary is 'control'
   * (reloads, config, weights) and each worker 'data' (requests, process
   * metrics), and the primary aggregates them. Series a role does not own are
   * never touched, so the aggregate has each exactly once.
   */
  constructor ({ processMetrics = true, role = 'all' }: { processMetrics?: boolean; role?: 'all' | 'control' | 'data' } = {}) {
    this.#register(new Computed('strangler_requests_total', 'Proxied requests, by context, the side that served them and status class.', 'counter',
      () => this.#allResponses(), r => r.requestSamples(), true))
    this.#register(new Computed('strangler_request_duration_seconds', 'Time from request arrival to the end of the response, by context and side.', 'histogram',
      () => this.#allResponses(), (r, name) => r.durationSamples(name), true))
    if (processMetrics && role !== 'control') client.collectDefaultMetrics({ register: this.registry })
    this.#role = role
    // Series whose labels are known up front start at 0: dashboards show 0, not "No data".
    if (role !== 'data') {
      for (const result of ['success', 'failure']) this.reloads.labels(result).inc(0)
      this.lastReloadOk.set(1)
    }
    if (role !== 'control') {
      for (const reason of REJECT_REASONS) this.rejected.labels(reason).inc(0)
      for (const reason of UPSTREAM_ERROR_REASONS) this.upstreamErrors.labels('default', 'legacy', reason).inc(0)
    }
  }

  #register<T> (metric: Computed<T>): void {
    this.registry.registerMetric(metric as unknown as Metric)
  }

  /**
   * The Prometheus text of every metric, as `registry.metrics()` gives it, in
   * pieces: the series of each context are rendered here, a chunk at a time
   * with a loop turn between chunks, and never joined into one string, so that
   * a scrape of 10,000 contexts (26 MB) does not stall the proxy. `fleet`: the
   * primary's view, with its workers' responses added up and their other
   * metrics aggregated by prom-client.
   */
  async * text (fleet?: { responses: Responses[]; others: Registry<RegistryContentType> }): AsyncGenerator<string> {
    let first = true
    for (const metric of this.registry.getMetricsAsArray() as unknown[]) {
      if (!(metric instanceof Computed) && fleet !== undefined) continue
      if (!first) yield '\n\n'
      first = false
      if (metric instanceof Computed) yield * (metric.ofResponses && fleet !== undefined ? (metric as unknown as Computed<Responses>).text(fleet.responses) : metric.text())
      else yield await this.registry.getSingleMetricAsString((metric as { name: string }).name)
    }
    if (fleet !== undefined) {
      for (const metric of fleet.others.getMetricsAsArray()) {
        if (!first) yield '\n\n'
        first = false
        yield await fleet.others.getSingleMetricAsString(metric.name)
      }
    }
    yield '\n'
  }

  /** What a worker sends the primary: its metrics, the per-context responses as rows. */
  async forPrimary (): Promise<WorkerMetrics> {
    return { families: await this.families(), rows: this.#allResponses().map(r => r.row()) }
  }

  /** Everything in JSON for the primary (the board): its workers' responses added up, the rest aggregated. */
  async fleetJSON (responses: Responses[], others: Registry<RegistryContentType>): Promise<object[]> {
    const computed = (this.registry.getMetricsAsArray() as unknown[]).filter(m => m instanceof Computed) as Array<Computed<unknown>>
    return [
      ...await Promise.all(computed.map(m => m.ofResponses ? (m as unknown as Computed<Responses>).get(responses) : m.get())),
      ...await others.getMetricsAsJSON()
    ]
  }

  /** prom-client JSON of every metric that is not computed here (what prom-client aggregates across processes). */
  async families (): Promise<object[]> {
    const out: object[] = []
    for (const metric of this.registry.getMetricsAsArray() as unknown[]) {
      if (!(metric instanceof Computed)) out.push(await (metric as Metric & { get: () => Promise<object> }).get())
    }
    return out
  }

  #allResponses (): Responses[] {
    return [...this.#responses.legacy.values(), ...this.#responses.new.values()]
  }

  response (context: string, side: Side, status: number, seconds: number): void {
    if (status < 100) return
    const bySide = side === 'new' ? this.#responses.new : this.#responses.legacy
    let r = bySide.get(context)
    if (r === undefined) bySide.set(context, r = new Responses(context, side))
    r.record(status, seconds)
  }

  upstreamError (context: string, side: Side, reason: UpstreamErrorReason): void {
    this.upstreamErrors.labels(context, side, reason).inc()
  }

  /** The first result of a context exports every result at 0 beside it, so a rate of any of them is defined. */
  shadowResult (context: string, result: string): void {
    if (!this.#shadowed.has(context)) {
      this.#shadowed.add(context)
      for (const r of SHADOW_RESULTS) this.shadow.labels(context, r).inc(0)
    }
    this.shadow.labels(context, result).inc()
  }

  previewResult (context: string, result: string): void {
    this.preview.labels(context, result).inc()
  }

  segmentDecision (context: string, segment: string, side: Side): void {
    this.segments.labels(context, segment, side).inc()
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

  /** The config in force: its hash, and the fallback and segment series of its contexts, from 0. */
  setConfig (config: Pick<Config, 'hash' | 'contexts'>): void {
    if (this.#role !== 'data') {
      this.configInfo.reset()
      this.configInfo.labels(config.hash).set(1)
    }
    if (this.#role === 'control') return
    for (const c of config.contexts) {
      if (c.fallback !== null) for (const reason of FALLBACK_REASONS) this.fallbacks.labels(c.name, reason).inc(0)
      c.segments?.forEach((s, i) => this.segments.labels(c.name, s.name ?? String(i), s.side).inc(0))
    }
  }

  /**
   * strangler_context_weight_percent, computed at each scrape from `weights`
   * (the control process's): a reload of 10,000 contexts sets no series.
   */
  exportWeights (weights: () => Array<{ context: string; configured: number; effective: number; overridden: boolean }>): void {
    this.#register(new Computed('strangler_context_weight_percent', 'Percent of a context\'s traffic sent to new: as configured, and in effect after runtime overrides.', 'gauge',
      weights, w => [
        { labels: { context: w.context, source: 'config' }, value: w.configured },
        { labels: { context: w.context, source: 'effective' }, value: w.effective }
      ]))
    this.#register(new Computed('strangler_context_overridden', 'Whether an operator\'s or a guard\'s runtime override sets the context\'s weight: 1 yes, 0 no (a ramp step is not an override here).', 'gauge',
      weights, w => [{ labels: { context: w.context }, value: w.overridden ? 1 : 0 }]))
  }
}
