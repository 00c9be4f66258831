import { createHash } from 'node:crypto'

/** First 12 hex digits of the SHA-256 of the file's UTF-8 bytes: the config version users see. */
export function configHash (text: string | Uint8Array): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12)
}
