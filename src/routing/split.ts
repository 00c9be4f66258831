import type { Side } from '../types.ts'
import { bucketAfter } from './sticky.ts'
import type { CompiledContext } from './table.ts'

/** Which side serves a request. `weightBp` is the effective weight × 100
 * (0..10000). With a sticky key the side is the key's bucket, so raising the
 * weight only ever moves keys from legacy to new; without one it is random. */
export function pickSide (ctx: CompiledContext, weightBp: number, key: string | undefined): Side {
  if (weightBp <= 0) return 'legacy'
  if (weightBp >= 10000) return 'new'
  if (key !== undefined) return bucketAfter(ctx.bucketPrefix, key) < weightBp ? 'new' : 'legacy'
  return Math.random() * 10000 < weightBp ? 'new' : 'legacy'
}
