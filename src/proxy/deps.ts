import type { BlockList } from 'node:net'
import type { Logger } from 'pino'
import type { EffectiveWeight, Preview } from '../routing/decide.ts'
import type { PreviewResult } from '../routing/preview.ts'
import type { RoutingTable } from '../routing/table.ts'
import type { ShadowObserver, Shadows } from '../shadow/shadows.ts'
import type { ForwardObserver } from './forward.ts'
import type { Tracing } from './tracing.ts'
import type { UpstreamPools } from './upstreams.ts'
import type { Side } from '../types.ts'

/** What the proxy reads once per request. Replaced whole on reload, never mutated. */
export interface Snapshot {
  table: RoutingTable
  trust: BlockList | null
  accessLog: boolean
  accessLogQuery: boolean
  /** 0: no limit. */
  maxBodyBytes: number
  /** server.underscoreHeaders is drop. */
  dropUnderscores: boolean
}

export const REJECT_REASONS = ['bad_path', 'body_too_large', 'headers_too_large', 'timeout', 'bad_request'] as const
export type RejectReason = typeof REJECT_REASONS[number]

export interface ProxyObserver extends ForwardObserver, ShadowObserver {
  previewResult (context: string, result: PreviewResult): void
  /** A segment picked the side; `segment` is its label (name or index), never a request value. */
  segmentDecision (context: string, segment: string, side: Side): void
  rejectedRequest (reason: RejectReason): void
}

export const noopObserver: ProxyObserver = {
  response () {},
  upstreamError () {},
  rejectedRequest () {},
  shadowResult () {},
  previewResult () {},
  segmentDecision () {},
  fallback () {}
}

export interface ProxyDeps {
  /** Dark launch; null where shadowing is not wired (it is, wherever contexts can ask for it). */
  shadows: Shadows | null
  /** The current snapshot; read once when a request arrives. */
  snapshot: () => Snapshot
  weightOf: EffectiveWeight
  /** Preview tokens: a valid one picks the side. */
  preview: Preview
  pools: UpstreamPools
  observer: ProxyObserver
  log: Logger
  /** noTracing unless OpenTelemetry is configured. */
  tracing: Tracing
  /** True while shutting down: responses then close their connection. */
  draining: () => boolean
}
