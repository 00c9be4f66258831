import path from 'node:path'
import { parseArgs } from 'node:util'
import { formatIssue, loadConfigFile } from '../config/index.ts'
import { canonicalize } from '../routing/path.ts'
import { matchContext, normalizeHost } from '../routing/match.ts'
import { forwardPath } from '../routing/rewrite.ts'
import { matchSegment } from '../routing/segments.ts'
import { bucket, stickyKey } from '../routing/sticky.ts'
import { segmentText } from '../config/segments.ts'
import { compileTable } from '../routing/table.ts'
import { UsageError } from './admin-client.ts'

export const explainHelp = `Usage: strangler explain FILE METHOD URL [-H 'name: value']...

Which context a request matches, which side it goes to and with what
probability, and the path the upstream receives. URL is a path (/api/orders/7)
or a full URL whose host is matched. Names the segment that decides, if any.
Uses the weights in FILE, not runtime overrides (see 'strangler status' for
those).`

export async function explain (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { header: { type: 'string', short: 'H', multiple: true } }, allowPositionals: true, strict: true })
  if (positionals.length !== 3) throw new UsageError('expected FILE METHOD URL')
  const [file, methodArg, url] = positionals
  const { config, errors } = loadConfigFile(path.resolve(file), { env: process.env, unsetVars: 'warn' })
  if (config === null) {
    for (const e of errors) process.stderr.write(`${formatIssue({ ...e, file })}\n`)
    return 1
  }
  const headers: Record<string, string> = {}
  for (const h of values.header ?? []) {
    const i = h.indexOf(':')
    if (i <= 0) throw new UsageError(`header "${h}" is not "name: value"`)
    // Node hands header bytes to the proxy one per char: do the same.
    headers[h.slice(0, i).trim().toLowerCase()] = Buffer.from(h.slice(i + 1).trim(), 'utf8').toString('latin1')
  }
  let target = url
  const authority = /^https?:\/\/([^/?#]*)/i.exec(url)
  if (authority !== null) {
    headers.host ??= authority[1]
    target = url.slice(authority[0].length)
    if (!target.startsWith('/')) target = `/${target}`
  }
  const method = methodArg.toUpperCase()
  const out: string[] = []
  const canonical = canonicalize(Buffer.from(target, 'utf8').toString('latin1'))
  if (canonical === null) {
    process.stdout.write(`${method} ${target}\nrefused: 400 STRANGLER_BAD_PATH (not a canonical path); no upstream sees it\n`)
    return 0
  }
  const table = compileTable(config)
  const ctx = matchContext(table, normalizeHost(headers.host), method, canonical.path)
  out.push(`request   ${method} ${canonical.path}${canonical.query}${headers.host === undefined ? '' : ` (host ${headers.host})`}`)
  if (ctx === null) {
    const up = table.defaultUpstream
    out.push('context   none: the default upstream serves it', `upstream  ${up.name} (${up.origin}) receives ${forwardPath(up, undefined, canonical.path, canonical.query)}`)
    process.stdout.write(`${out.join('\n')}\n`)
    return 0
  }
  const c = ctx.context
  out.push(`context   ${c.name} (paths ${c.paths.join(', ')}; hosts ${c.hosts?.join(', ') ?? 'any'}; methods ${c.methods?.join(', ') ?? 'any'})`)
  const segment = ctx.segments === null ? null : matchSegment(ctx.segments, headers, canonical.query)
  if (segment !== null) {
    out.push(`segment   segments[${segment.index}] matches (${segmentText((c.segments ?? [])[segment.index])}): it goes to ${segment.side} whatever the weight, unless the context is rolled back`)
  } else if (ctx.segments !== null) {
    out.push(`segments  none of ${ctx.segments.length} matches: the weight decides`)
  }
  const key = ctx.sticky === null || segment !== null ? undefined : stickyKey(ctx.sticky, headers)
  const source = ctx.sticky === null ? '' : ctx.sticky.header !== undefined ? `header ${ctx.sticky.header}` : `cookie ${ctx.sticky.cookie}`
  let pNew = c.weight
  if (segment !== null) {
    pNew = segment.side === 'new' ? 100 : 0
  } else if (key !== undefined) {
    const b = bucket(c.name, key)
    pNew = b < ctx.weightBp ? 100 : 0
    out.push(`sticky    ${source} = ${key}: bucket ${b} of 10000; buckets below ${ctx.weightBp} go to new`)
  } else if (ctx.sticky !== null) {
    out.push(`sticky    no ${source} on this request: the side is drawn at random`)
  }
  const shadow = c.shadow
  if (shadow !== null) {
    const applies = shadow.methods.includes(method)
    out.push(`shadow    ${applies ? `when legacy serves it, ${shadow.percent}% of the time also sent to ${ctx.new.name} (x-strangler-shadow: 1) and the answers compared` : `not shadowed: ${method} is not in shadow.methods (${shadow.methods.join(', ')})`}`)
  }
  for (const side of ['new', 'legacy'] as const) {
    const p = side === 'new' ? pNew : Math.round((100 - pNew) * 100) / 100
    const up = side === 'new' ? ctx.new : ctx.legacy
    out.push(`${side.padEnd(9)} ${String(p).padStart(6)}%  ${up.name} receives ${forwardPath(up, ctx.rewrite[side], canonical.path, canonical.query)}`)
  }
  process.stdout.write(`${out.join('\n')}\n`)
  return 0
}
