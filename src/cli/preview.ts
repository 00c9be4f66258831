import { parseArgs } from 'node:util'
import { parseDuration } from '../config/index.ts'
import { PREVIEW_COOKIE, PREVIEW_HEADER, signPreview } from '../routing/preview.ts'
import { UsageError } from './admin-client.ts'

export const previewHelp = `Usage: strangler preview-token CONTEXT [--side new|legacy] [--ttl 1h]

Prints a token that sends its bearer's requests for CONTEXT to one side
(default new) until it expires (default 1h), whatever the weight: testers reach
the new service before any user does. Send it as the header ${PREVIEW_HEADER}
or the cookie ${PREVIEW_COOKIE}. Signed with HMAC-SHA256 using
$STRANGLER_PREVIEW_SECRET, which the proxy must have too; without it, preview
tokens are off.`

export async function previewToken (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { side: { type: 'string' }, ttl: { type: 'string' } }, allowPositionals: true, strict: true })
  if (positionals.length !== 1) throw new UsageError('expected CONTEXT')
  const side = values.side ?? 'new'
  if (side !== 'new' && side !== 'legacy') throw new UsageError(`--side is new or legacy, not "${side}"`)
  const ttlMs = parseDuration(values.ttl ?? '1h')
  if (ttlMs === null) throw new UsageError(`--ttl "${values.ttl}" is not a duration such as 30m or 8h`)
  const secret = process.env.STRANGLER_PREVIEW_SECRET
  if (secret === undefined || secret === '') {
    process.stderr.write('strangler preview-token: preview tokens are off: set STRANGLER_PREVIEW_SECRET (the same value the proxy has)\n')
    return 1
  }
  const expires = Math.floor((Date.now() + ttlMs) / 1000)
  process.stdout.write(`${signPreview(secret, { context: positionals[0], side, expires })}\n`)
  process.stderr.write(`valid until ${new Date(expires * 1000).toISOString()} for context "${positionals[0]}", side ${side}; send it as the header ${PREVIEW_HEADER}\n`)
  return 0
}
