import { createHash, timingSafeEqual } from 'node:crypto'

function digest (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/**
 * Checks `Authorization: Bearer <token>` in constant time: both sides are hashed
 * first, so neither the content nor the length of the token leaks through timing.
 */
export function bearerMatches (header: string | undefined, token: string): boolean {
  if (header === undefined || !/^bearer /i.test(header)) return false
  return timingSafeEqual(digest(header.slice(7).trim()), digest(token))
}
