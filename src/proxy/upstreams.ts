import { Pool } from 'undici'
import type { Upstream } from '../types.ts'
import { Gate } from './gate.ts'

/**
 * One undici connection pool per upstream, of `maxConnections` connections,
 * behind a gate where further requests wait. Kept across reloads while the
 * upstream keeps its URL and maxConnections; timeouts are per request, so they
 * change without touching the connections. TLS certificates are verified
 * (undici's default).
 */
export class UpstreamPools {
  readonly #gates = new Map<string, Gate>()

  get (upstream: Upstream): Gate {
    let gate = this.#gates.get(upstream.name)
    if (gate === undefined) {
      const pool = new Pool(upstream.origin, { pipelining: 1, connections: upstream.maxConnections, connect: { timeout: Math.min(upstream.timeoutMs, 10_000) } })
      gate = new Gate(pool, upstream.origin, upstream.maxConnections, upstream.queueTimeoutMs)
      this.#gates.set(upstream.name, gate)
    }
    return gate
  }

  /**
   * After a reload: the pools of upstreams no longer declared, or declared with
   * another URL or maxConnections, close once their requests are done.
   */
  retain (upstreams: Iterable<Upstream>): void {
    const keep = new Map<string, Upstream>()
    for (const u of upstreams) keep.set(u.name, u)
    for (const [name, gate] of this.#gates) {
      const u = keep.get(name)
      if (u !== undefined && u.origin === gate.origin && u.maxConnections === gate.max) {
        gate.waitMs = u.queueTimeoutMs
        continue
      }
      this.#gates.delete(name)
      gate.retire().catch(() => {})
    }
  }

  get origins (): string[] {
    return [...this.#gates.values()].map(g => g.origin)
  }

  async close (): Promise<void> {
    const gates = [...this.#gates.values()]
    this.#gates.clear()
    await Promise.all(gates.map(g => g.retire()))
  }

  destroy (): void {
    for (const gate of this.#gates.values()) gate.destroy()
    this.#gates.clear()
  }
}
