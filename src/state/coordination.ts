/**
 * How the replicas sharing a state store work together, besides sharing the
 * overrides: one lease (the replica holding it decides guards and ramps for
 * the fleet), the guard windows each replica shares, and heartbeats with
 * acknowledgements (who is alive, and who applied which change).
 */
export interface Coordination {
  /** This replica's name in the fleet. */
  readonly replica: string
  /** Reachable now. */
  readonly up: boolean
  /** Takes or keeps the fleet's single lease for `ms`; true while `holder` has it. */
  lead: (holder: string, ms: number) => Promise<boolean>
  /** Publishes this replica's window data per context; it expires with the replica after `ms`. */
  shareWindows: (replica: string, windows: Record<string, unknown>, ms: number) => Promise<void>
  /** Every replica's window data for each context. */
  gatherWindows: (contexts: string[]) => Promise<Map<string, unknown[]>>
  /** Tells the fleet this replica applied every change up to `version`. */
  ack: (version: number) => void
  /** Waits until every other live replica acknowledged `version`; null when all did, else a warning naming those that did not. */
  confirm: (version: number) => Promise<string | null>
}
