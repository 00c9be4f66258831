import { segmentText } from '../config/segments.ts'
import type { Segment } from '../types.ts'
import { adminOptions, adminOptionsHelp, callAdmin, parse, reportFailure } from './admin-client.ts'

export const statusHelp = `Usage: strangler status

What is live: the config version, and per context the configured and the
effective weight and any runtime override; then each context's segments, in
the order they are checked; then the dormant overrides, kept for contexts
that are not in the config.

${adminOptionsHelp}`

interface Status {
  config: { hash: string; loadedAt: string; lastError: string[] | null }
  state: { store: string; shared: boolean; up: boolean; lastError: string | null }
  contexts: Array<{
    name: string
    configuredWeight: number
    effectiveWeight: number
    override: { reason: string; by: string; at: string; expiresAt: string | null } | null
    shadow?: { percent: number; compared: number; matchRate: number | null; noisyRate?: number | null } | null
    segments?: Array<Segment & { label: string }>
    segmentsInForce?: boolean
  }>
  /** Absent from proxies older than this CLI. */
  dormantOverrides?: Array<{ context: string; weight: number; reason: string; by: string; at: string; expiresAt: string | null }>
}

function describe (o: { reason: string; by: string; at: string; expiresAt: string | null }): string {
  return `${o.reason} (by ${o.by} at ${o.at}${o.expiresAt === null ? '' : `, expires ${o.expiresAt}`})`
}

export function table (rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)))
  return rows.map(r => r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i])).join('  ')).join('\n')
}

export async function status (argv: string[]): Promise<number> {
  const { values } = parse(argv, adminOptions, [])
  const answer = await callAdmin(values, 'GET', '/status')
  if (answer.status !== 200) return reportFailure('status', answer)
  const s = answer.body as Status
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`)
    return 0
  }
  let out = `config ${s.config.hash}, loaded ${s.config.loadedAt}\n`
  if (s.config.lastError !== null) out += `last reload FAILED (the config above keeps serving):\n${s.config.lastError.map(e => `  ${e}\n`).join('')}`
  if (s.state.shared) out += s.state.up ? `overrides shared through ${s.state.store}\n` : `shared state store DOWN (${s.state.store}: ${s.state.lastError ?? 'unreachable'}): serving the last known overrides; changes are refused\n`
  else if (s.state.lastError !== null) out += `overrides NOT SAVED: ${s.state.lastError}\n`
  const shadows = s.contexts.some(c => c.shadow !== undefined)
  const rows = [['CONTEXT', 'CONFIGURED', 'EFFECTIVE', ...(shadows ? ['SHADOW'] : []), 'OVERRIDE']]
  for (const c of s.contexts) {
    const o = c.override
    const sh = c.shadow
    const noisy = sh?.noisyRate != null && sh.noisyRate > 0 ? `, ${(sh.noisyRate * 100).toFixed(1)}% noisy` : ''
    const shadow = sh === undefined ? '-' : sh === null ? 'on (see metrics)' : sh.matchRate === null ? `${sh.percent}%, nothing compared yet` : `${sh.percent}%, ${(sh.matchRate * 100).toFixed(1)}% match of ${sh.compared}${noisy}`
    rows.push([c.name, `${c.configuredWeight}%`, `${c.effectiveWeight}%`, ...(shadows ? [shadow] : []), o === null ? '-' : describe(o)])
  }
  out += `\n${table(rows)}\n`
  const segments = [['CONTEXT', 'SEGMENT', 'PINS']]
  for (const c of s.contexts) {
    for (const seg of c.segments ?? []) segments.push([c.name, seg.label, `${segmentText(seg, false)}${c.segmentsInForce === false ? ' (off: rolled back)' : ''}`])
  }
  if (segments.length > 1) out += `\nSEGMENTS (before the weight; the first that matches decides)\n${table(segments)}\n`
  const dormant = s.dormantOverrides ?? []
  if (dormant.length > 0) out += `\nDORMANT (context not in the config; applies again if it comes back with the same YAML)\n${table(dormant.map(d => [d.context, `${d.weight}%`, describe(d)]))}\n`
  process.stdout.write(out)
  return 0
}
