import type { Side } from '../../types.ts'

/** The part of prom-client's `getMetricsAsJSON()` (or an aggregate of workers') the board reads. */
export interface MetricFamily {
  name: string
  values: Array<{ value: number; labels: Record<string, string | number | undefined>; metricName?: string }>
}

interface SideCounts {
  requests: number
  errors: number
  /** Cumulative counts per bound of `Sample.bounds`, as the histogram's `le` buckets. */
  buckets: number[]
}

/** Counters of every context and side at one instant. */
export interface Sample {
  at: number
  /** Upper bounds of the latency histogram, ascending, ending with Infinity. */
  bounds: number[]
  /** Key: context + '\0' + side. */
  sides: Map<string, SideCounts>
  fallbacks: Map<string, number>
  /** Comparisons since start: errors and drops are not comparisons. */
  shadow: Map<string, { match: number; mismatch: number; noisy: number }>
  reloads: { success: number; failure: number }
}

export interface SideRates {
  /** Answers per second served by this side. */
  rps: number
  /** Percent of this side's answers that were 5xx; null without answers. */
  errorRate: number | null
  /** Seconds, interpolated within the histogram bucket it falls in; null without traffic. */
  p99: number | null
  /**
   * New only: percent of the requests sent to new that legacy answered instead
   * (`fallback`), apart from 5xx; null for legacy and when nothing was sent to new.
   */
  fallbackRate: number | null
}

export interface WindowRates {
  seconds: number
  contexts: Map<string, Record<Side, SideRates>>
  /** All proxied answers per second, unmatched traffic (`default`) included. */
  rps: number
  newRps: number
}

const key = (context: string, side: Side): string => `${context}\0${side}`

function bound (le: string | number | undefined): number {
  return le === '+Inf' ? Infinity : Number(le)
}

/** Reads the board's counters out of a metrics snapshot. */
export function sampleOf (families: MetricFamily[], at: number): Sample {
  const sample: Sample = { at, bounds: [], sides: new Map(), fallbacks: new Map(), shadow: new Map(), reloads: { success: 0, failure: 0 } }
  const side = (context: string, s: Side): SideCounts => {
    let counts = sample.sides.get(key(context, s))
    if (counts === undefined) {
      counts = { requests: 0, errors: 0, buckets: [] }
      sample.sides.set(key(context, s), counts)
    }
    return counts
  }
  const byName = new Map(families.map(f => [f.name, f.values]))
  for (const { labels, value } of byName.get('strangler_requests_total') ?? []) {
    const counts = side(String(labels.context), labels.side as Side)
    counts.requests += value
    if (labels.code === '5xx') counts.errors += value
  }
  const buckets = (byName.get('strangler_request_duration_seconds') ?? []).filter(v => v.metricName?.endsWith('_bucket') === true)
  sample.bounds = [...new Set(buckets.map(v => bound(v.labels.le)))].sort((a, b) => a - b)
  const index = new Map(sample.bounds.map((b, i) => [b, i]))
  for (const { labels, value } of buckets) {
    const counts = side(String(labels.context), labels.side as Side)
    if (counts.buckets.length === 0) counts.buckets = new Array<number>(sample.bounds.length).fill(0)
    counts.buckets[index.get(bound(labels.le)) as number] = value
  }
  for (const { labels, value } of byName.get('strangler_fallbacks_total') ?? []) {
    const context = String(labels.context)
    sample.fallbacks.set(context, (sample.fallbacks.get(context) ?? 0) + value)
  }
  for (const { labels, value } of byName.get('strangler_shadow_requests_total') ?? []) {
    const context = String(labels.context)
    const result = labels.result
    if (result !== 'match' && result !== 'mismatch' && result !== 'noisy') continue
    const s = sample.shadow.get(context) ?? { match: 0, mismatch: 0, noisy: 0 }
    s[result] += value
    sample.shadow.set(context, s)
  }
  for (const { labels, value } of byName.get('strangler_config_reloads_total') ?? []) {
    if (labels.result === 'success') sample.reloads.success += value
    if (labels.result === 'failure') sample.reloads.failure += value
  }
  return sample
}

/**
 * The quantile `q` of a histogram given as cumulative bucket counts: linear
 * interpolation inside the bucket it falls in, as Prometheus'
 * histogram_quantile does; in the +Inf bucket, the highest finite bound.
 */
export function quantile (q: number, bounds: number[], cumulative: number[]): number | null {
  const total = cumulative[cumulative.length - 1] ?? 0
  if (total <= 0) return null
  const rank = q * total
  for (let i = 0; i < bounds.length; i++) {
    if (cumulative[i] < rank) continue
    if (bounds[i] === Infinity) return bounds[i - 1] ?? null
    const lower = i === 0 ? 0 : bounds[i - 1]
    const below = i === 0 ? 0 : cumulative[i - 1]
    return lower + (bounds[i] - lower) * (rank - below) / (cumulative[i] - below)
  }
  return null
}

/** A counter's increase; a counter that went down was reset (a replaced worker), so it counts from 0. */
function increase (before: number, after: number): number {
  return after >= before ? after - before : after
}

const NO_COUNTS: SideCounts = { requests: 0, errors: 0, buckets: [] }

/** Rates per context and side between two samples. */
export function ratesBetween (older: Sample, newer: Sample): WindowRates {
  const seconds = (newer.at - older.at) / 1000
  const out: WindowRates = { seconds, contexts: new Map(), rps: 0, newRps: 0 }
  const rates = (context: string, side: Side): SideRates => {
    const after = newer.sides.get(key(context, side)) ?? NO_COUNTS
    let before = older.sides.get(key(context, side)) ?? NO_COUNTS
    if (after.requests < before.requests) before = NO_COUNTS
    const answers = after.requests - before.requests
    const buckets = after.buckets.map((n, i) => n - (before.buckets[i] ?? 0))
    const fallbacks = side === 'new' ? increase(older.fallbacks.get(context) ?? 0, newer.fallbacks.get(context) ?? 0) : 0
    return {
      rps: answers / seconds,
      errorRate: answers === 0 ? null : ((after.errors - before.errors) / answers) * 100,
      p99: quantile(0.99, newer.bounds, buckets),
      fallbackRate: side === 'legacy' || answers + fallbacks === 0 ? null : (fallbacks / (answers + fallbacks)) * 100
    }
  }
  const names = new Set([...newer.sides.keys()].map(k => k.slice(0, k.indexOf('\0'))))
  for (const context of names) {
    const both = { legacy: rates(context, 'legacy'), new: rates(context, 'new') }
    out.contexts.set(context, both)
    out.rps += both.legacy.rps + both.new.rps
    out.newRps += both.new.rps
  }
  return out
}

/** Reads closer together than this reuse the latest snapshot: several open boards cost one. */
const MIN_SPACING_MS = 1000
/**
 * Snapshots never take more than a tenth of the time: with thousands of busy
 * contexts one costs hundreds of milliseconds of the thread that also proxies.
 */
const MAX_SHARE = 0.1

/**
 * Live rates over a short sliding window, from snapshots of the metrics taken
 * when the board asks (nothing runs while nobody watches), at most one a
 * second and at most a tenth of the time. The first read has no window yet;
 * later reads cover up to `windowMs`.
 */
export class LiveRates {
  #samples: Sample[] = []
  #taking: Promise<Sample> | null = null
  #spacingMs = MIN_SPACING_MS

  constructor (
    private readonly collect: () => Promise<MetricFamily[]>,
    readonly windowMs = 10_000,
    private readonly now: () => number = Date.now
  ) {}

  async read (): Promise<{ latest: Sample; window: WindowRates | null }> {
    const last = this.#samples[this.#samples.length - 1]
    const latest = last !== undefined && this.now() - last.at < this.#spacingMs ? last : await this.#take()
    const oldest = this.#samples[0]
    return { latest, window: oldest === latest ? null : ratesBetween(oldest, latest) }
  }

  #take (): Promise<Sample> {
    if (this.#taking === null) {
      const at = this.now()
      this.#taking = Promise.resolve()
        .then(() => this.collect())
        .then(families => {
          const sample = sampleOf(families, at)
          this.#samples = [...this.#samples.filter(s => s.at >= at - this.windowMs), sample]
          this.#spacingMs = Math.max(MIN_SPACING_MS, (this.now() - at) / MAX_SHARE)
          return sample
        })
        .finally(() => { this.#taking = null })
    }
    return this.#taking
  }
}
