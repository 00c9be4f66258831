import { Pool } from 'undici'
import type { Upstream } from '../types.ts'

/**
 * One undici connection pool per upstream origin, kept across reloads while the
 * origin is still declared. Timeouts are per request, so they can change without
 * touching the connections. TLS certificates are verified (undici's default).
 */
export class UpstreamPools {
  readonly #pools = new Map<string, Pool>()

  get (upstream: Upstream): Pool {
    let pool = this.#pools.get(upstream.origin)
    if (pool === undefined) {
      pool = new Pool(upstream.origin, { pipelining: 1, connect: { timeout: Math.min(upstream.timeoutMs, 10_000) } })
      this.#pools.set(upstream.origin, pool)
    }
    return pool
  }

  /** Close, after their in-flight requests finish, the pools of origins no longer declared. */
  retain (upstreams: Iterable<Upstream>): void {
    const keep = new Set<string>()
    for (const u of upstreams) keep.add(u.origin)
    for (const [origin, pool] of this.#pools) {
      if (keep.has(origin)) continue
      this.#pools.delete(origin)
      pool.close().catch(() => {})
    }
  }

  get origins (): string[] {
    return [...this.#pools.keys()]
  }

  async close (): Promise<void> {
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    await Promise.all(pools.map(p => p.close()))
  }

  destroy (): void {
    for (const pool of this.#pools.values()) pool.destroy().catch(() => {})
    this.#pools.clear()
  }
}
