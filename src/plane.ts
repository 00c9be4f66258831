import type { WorkerMetrics } from './metrics.ts'
import type { Config, HostPort } from './types.ts'

/**
 * Where requests are forwarded: in this process (DataPlane) or in worker
 * processes (Fleet). The control side (config file, overrides, admin) drives
 * either through this, and nothing else.
 */
export interface Plane {
  /** Starts accepting on `at`. */
  listen (at: HostPort): Promise<void>
  /** The config now in force; resolves with a warning when part of the plane did not confirm it. */
  setConfig (config: Config): Promise<string | null>
  /** Effective weights of overridden contexts (basis points); the others follow the config. */
  setWeights (weights: Readonly<Record<string, number>>): Promise<string | null>
  /** Metrics kept outside this process (one entry per worker); null when this process's registry holds them. */
  metrics (): Promise<WorkerMetrics[] | null>
  /** Stops accepting, lets responses in flight finish for up to `timeoutMs`, then closes everything. */
  drain (timeoutMs: number): Promise<void>
  /** host:port of the proxy listener. */
  readonly address: string
}
