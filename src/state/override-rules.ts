import { createHash } from 'node:crypto'
import type { Context } from '../types.ts'
import type { Entry } from './store.ts'

const fingerprints = new WeakMap<Context, string>()

/** Identifies a context's YAML; contexts are immutable, so each is hashed once. */
export function contextFingerprint (c: Context): string {
  let fp = fingerprints.get(c)
  if (fp === undefined) {
    fp = createHash('sha256').update(JSON.stringify(c)).digest('hex').slice(0, 12)
    fingerprints.set(c, fp)
  }
  return fp
}

/** Why an override whose context is not in the config is kept (dormant), not dropped. */
export const DORMANT = 'context removed from the config'

/**
 * Why `entry` is not in force, or null when it is. `ctx` is its context in
 * the config (undefined: absent, so DORMANT); `anchor`, with a shared store,
 * the fleet version at which this YAML of the context first ran.
 */
export function notInForce (entry: Entry, ctx: Context | undefined, anchor: number | undefined, now: number): string | null {
  const o = entry.override
  if (o === null) return 'cleared'
  if (o.expiresAt !== null && Date.parse(o.expiresAt) <= now) return 'ttl expired'
  if (ctx === undefined) return DORMANT
  if (contextFingerprint(ctx) !== o.contextHash && !(entry.version > (anchor ?? Infinity))) return 'the YAML of this context changed: the YAML wins'
  return null
}

/** The log line of a change that could not be saved: what it means for the next start. */
export const UNSAVED = {
  set: (name: string) => `the override of ${name} applies now but could not be saved: it will not survive a restart`,
  clear: (name: string) => `the override of ${name} is cleared but that could not be saved: after a restart it applies again`,
  drop: (name: string) => `the override of ${name} ended but that could not be saved: the state file still holds it, and a restart drops it again`
}
