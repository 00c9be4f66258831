import type { WorkerMetrics } from '../metrics.ts'
import type { Config, HostPort } from '../types.ts'

/** Effective weights of overridden contexts, in basis points (ROLLED_BACK for a rollback), by context name. */
export type WeightMap = Record<string, number>

/** Primary → worker. */
export type ToWorker =
  | { t: 'init'; config: Config; weights: WeightMap; listen: HostPort }
  | { t: 'config'; id: number; config: Config }
  | { t: 'weights'; id: number; weights: WeightMap }
  | { t: 'metrics'; id: number }
  | { t: 'drain'; timeoutMs: number }

/** Worker → primary. */
export type FromWorker =
  | { t: 'hello' }
  | { t: 'listening'; address: string }
  | { t: 'ack'; id: number }
  | { t: 'metrics'; id: number; data: WorkerMetrics }
