import { createHmac, timingSafeEqual } from 'node:crypto'
import type { Side } from '../types.ts'
import { cookieValue } from './sticky.ts'

/** Preview tokens: a signed "send me to this side of this context until then", for testers. */

export const PREVIEW_HEADER = 'x-strangler-preview'
export const PREVIEW_COOKIE = 'strangler_preview'

export interface PreviewClaim {
  context: string
  side: Side
  /** Unix seconds. */
  expires: number
}

export type PreviewCheck = { ok: true; claim: PreviewClaim } | { ok: false; reason: 'malformed' | 'bad_signature' | 'expired' }

function mac (secret: string, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload).digest()
}

/** `base64url(JSON claim).base64url(HMAC-SHA256(secret, first part))`. */
export function signPreview (secret: string, claim: PreviewClaim): string {
  const payload = Buffer.from(JSON.stringify({ c: claim.context, s: claim.side, e: claim.expires })).toString('base64url')
  return `${payload}.${mac(secret, payload).toString('base64url')}`
}

export function verifyPreview (secret: string, token: string, nowSeconds: number): PreviewCheck {
  const dot = token.indexOf('.')
  if (dot <= 0 || token.length > 512) return { ok: false, reason: 'malformed' }
  const payload = token.slice(0, dot)
  const given = Buffer.from(token.slice(dot + 1), 'base64url')
  const expected = mac(secret, payload)
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad_signature' }
  let data: { c?: unknown; s?: unknown; e?: unknown }
  try {
    data = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
  } catch {
    return { ok: false, reason: 'malformed' }
  }
  if (typeof data.c !== 'string' || (data.s !== 'new' && data.s !== 'legacy') || typeof data.e !== 'number') return { ok: false, reason: 'malformed' }
  if (data.e <= nowSeconds) return { ok: false, reason: 'expired' }
  return { ok: true, claim: { context: data.c, side: data.s, expires: data.e } }
}

export type PreviewResult = 'accepted' | 'malformed' | 'bad_signature' | 'expired' | 'wrong_context'

/**
 * The routing hook for preview tokens (header x-strangler-preview, or cookie
 * strangler_preview). Without a secret, tokens are off and every request is
 * routed by weight. `count` sees every token presented.
 */
export function previewer (secret: string | null, count: (context: string, result: PreviewResult) => void, now: () => number = () => Date.now() / 1000) {
  return (ctx: { name: string }, headers: Record<string, string | string[] | undefined>): Side | null => {
    if (secret === null) return null
    let token = headers[PREVIEW_HEADER]
    if (token === undefined) {
      const cookie = headers.cookie
      if (cookie === undefined || !String(cookie).includes(PREVIEW_COOKIE)) return null
      token = cookieValue(String(cookie), PREVIEW_COOKIE)
      if (token === undefined || token === '') return null
    }
    const check = verifyPreview(secret, Array.isArray(token) ? token[0] : token, now())
    if (!check.ok) {
      count(ctx.name, check.reason)
      return null
    }
    if (check.claim.context !== ctx.name) {
      count(ctx.name, 'wrong_context')
      return null
    }
    count(ctx.name, 'accepted')
    return check.claim.side
  }
}
