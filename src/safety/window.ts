import type { Side } from '../types.ts'

/** Upper bounds (seconds) of the latency buckets; p99 is reported as the bound it falls under. */
const BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, Infinity]
const SLICES = 10

export interface SideSummary {
  requests: number
  /** 5xx answers (and, for new, fallbacks) per request, in percent. */
  errorRate: number
  /** Seconds; null without requests. */
  p99: number | null
}

/** One slice as shared between replicas: per side [legacy, new] counts and latency buckets. */
export interface SliceData {
  start: number
  requests: number[]
  errors: number[]
  latency: number[][]
}

class Slice {
  start = 0
  readonly requests = [0, 0]
  readonly errors = [0, 0]
  readonly latency = [new Uint32Array(BOUNDS.length), new Uint32Array(BOUNDS.length)]

  reset (start: number): void {
    this.start = start
    this.requests.fill(0)
    this.errors.fill(0)
    this.latency[0].fill(0)
    this.latency[1].fill(0)
  }
}

/**
 * Requests, errors and latency of both sides of one context over a sliding
 * window, kept in ten slices so that old traffic ages out without storing
 * individual requests.
 */
export class SideWindow {
  readonly #slices = Array.from({ length: SLICES }, () => new Slice())

  constructor (private readonly spanMs: number, private readonly now: () => number) {}

  #current (): Slice {
    const width = this.spanMs / SLICES
    const start = Math.floor(this.now() / width) * width
    const slice = this.#slices[Math.round(start / width) % SLICES]
    if (slice.start !== start) slice.reset(start)
    return slice
  }

  record (side: Side, status: number, seconds: number): void {
    const s = this.#current()
    const i = side === 'new' ? 1 : 0
    s.requests[i]++
    if (status >= 500) s.errors[i]++
    let b = 0
    while (seconds > BOUNDS[b]) b++
    s.latency[i][b]++
  }

  /** A retry on legacy counts as an error of new (its answer is counted on legacy). */
  fallback (): void {
    const s = this.#current()
    s.requests[1]++
    s.errors[1]++
  }

  /** The slices still inside the window, to share with other replicas. */
  export (): SliceData[] {
    const oldest = this.now() - this.spanMs
    return this.#slices.filter(s => s.start > oldest).map(s => ({ start: s.start, requests: [...s.requests], errors: [...s.errors], latency: s.latency.map(l => Array.from(l)) }))
  }

  /** Adds another replica's slices to this window (slices too old for it are skipped). */
  absorb (data: SliceData[]): void {
    const width = this.spanMs / SLICES
    const oldest = this.now() - this.spanMs
    for (const d of data) {
      if (d.start <= oldest) continue
      const slice = this.#slices[Math.round(d.start / width) % SLICES]
      if (slice.start > d.start) continue
      if (slice.start !== d.start) slice.reset(d.start)
      for (let i = 0; i < 2; i++) {
        slice.requests[i] += d.requests[i] ?? 0
        slice.errors[i] += d.errors[i] ?? 0
        for (let b = 0; b < BOUNDS.length; b++) slice.latency[i][b] += d.latency[i]?.[b] ?? 0
      }
    }
  }

  summary (side: Side): SideSummary {
    const i = side === 'new' ? 1 : 0
    const oldest = this.now() - this.spanMs
    let requests = 0
    let errors = 0
    const latency = new Array<number>(BOUNDS.length).fill(0)
    let timed = 0
    for (const s of this.#slices) {
      if (s.start <= oldest) continue
      requests += s.requests[i]
      errors += s.errors[i]
      for (let b = 0; b < BOUNDS.length; b++) {
        latency[b] += s.latency[i][b]
        timed += s.latency[i][b]
      }
    }
    let p99: number | null = null
    if (timed > 0) {
      let seen = 0
      for (let b = 0; b < BOUNDS.length; b++) {
        seen += latency[b]
        if (seen >= timed * 0.99) {
          p99 = BOUNDS[b]
          break
        }
      }
    }
    return { requests, errorRate: requests === 0 ? 0 : (errors / requests) * 100, p99 }
  }
}
