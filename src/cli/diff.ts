import path from 'node:path'
import { parseArgs } from 'node:util'
import { diffConfigs, type ContextChange } from '../config/diff.ts'
import { formatIssue, loadConfigFile } from '../config/index.ts'
import { segmentText } from '../config/segments.ts'
import type { Config } from '../types.ts'
import { UsageError } from './admin-client.ts'
import { table } from './status.ts'

export const diffHelp = `Usage: strangler diff [--json] OLD NEW

The traffic impact of a config change: per context the weight from → to, the
share of sticky users that change side, contexts added or removed, match and
upstream changes, and the segments added, removed or changed with the side
each pins. Exit 0; 1 when a file is invalid.`

function load (file: string): Config | null {
  const { config, errors } = loadConfigFile(path.resolve(file), { env: process.env, unsetVars: 'warn' })
  for (const e of errors) process.stderr.write(`${formatIssue({ ...e, file })}\n`)
  return config
}

function impact (c: ContextChange, after: Config): string {
  const parts: string[] = []
  if (c.kind === 'added') parts.push(`added at ${c.weight?.to}% to new`)
  if (c.kind === 'removed') parts.push(`removed: its traffic goes to the default upstream "${after.default}"`)
  if (c.kind === 'changed' && c.weight !== undefined) {
    const delta = Math.round((c.weight.to - c.weight.from) * 100) / 100
    parts.push(`${Math.abs(delta)}% of its traffic moves ${delta > 0 ? 'legacy → new' : 'new → legacy'}`)
  }
  if (c.stickyMoved !== undefined) parts.push(`${c.stickyMoved}% of sticky users change side`)
  if (c.fields.length > 0) parts.push(`${c.fields.join(', ')} changed`)
  const s = c.segments
  if (s !== undefined) {
    for (const seg of s.added) parts.push(`segment added: ${segmentText(seg)}`)
    for (const seg of s.removed) parts.push(`segment removed: ${segmentText(seg)}`)
    for (const { from, to } of s.changed) parts.push(`segment changed: ${segmentText(to)} (was ${segmentText(from)})`)
  }
  return parts.join('; ')
}

export async function diff (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean' } }, allowPositionals: true, strict: true })
  if (positionals.length !== 2) throw new UsageError('expected OLD NEW')
  const before = load(positionals[0])
  const after = load(positionals[1])
  if (before === null || after === null) return 1
  const d = diffConfigs(before, after)
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify(d, null, 2)}\n`)
    return 0
  }
  const lines: string[] = []
  if (d.contexts.length > 0) {
    const rows = [['CONTEXT', 'WEIGHT', 'IMPACT']]
    for (const c of d.contexts) {
      rows.push([c.context, c.weight === undefined ? '(same)' : `${c.weight.from}% → ${c.weight.to}%`, impact(c, after)])
    }
    lines.push(table(rows))
  }
  const u = d.upstreams
  if (u.added.length > 0) lines.push(`upstreams added: ${u.added.join(', ')}`)
  if (u.removed.length > 0) lines.push(`upstreams removed: ${u.removed.join(', ')}`)
  if (u.changed.length > 0) lines.push(`upstreams changed: ${u.changed.join(', ')}`)
  if (d.default !== undefined) lines.push(`default: ${d.default.from} → ${d.default.to} (all unmatched traffic moves)`)
  process.stdout.write(`${lines.length === 0 ? 'no traffic change' : lines.join('\n')}\n`)
  return 0
}
