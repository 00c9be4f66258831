import { adminOptions, adminOptionsHelp, callAdmin, parse, reportFailure } from './admin-client.ts'

const changeOptions = { ...adminOptions, reason: { type: 'string' }, ttl: { type: 'string' } } as const

export const rollbackHelp = `Usage: strangler rollback CONTEXT [--reason R] [--ttl D]

Sends all of CONTEXT's traffic to legacy now, through the admin API. The
override is kept across restarts until it is cleared, its --ttl (e.g. 30m)
lapses, or the context's YAML changes.

${adminOptionsHelp}`

export const weightHelp = `Usage: strangler weight CONTEXT PERCENT [--reason R] [--ttl D]

Sets CONTEXT's effective weight (percent to new, 0-100, two decimals) now,
through the admin API.

${adminOptionsHelp}`

interface ContextAnswer {
  name: string
  configuredWeight: number
  effectiveWeight: number
  override: { reason: string; expiresAt: string | null } | null
  warning?: string
}

function printChange (values: { json?: boolean }, c: ContextAnswer): number {
  if (values.json === true) process.stdout.write(`${JSON.stringify(c, null, 2)}\n`)
  else {
    const expires = c.override?.expiresAt == null ? '' : `, until ${c.override.expiresAt}`
    process.stdout.write(`${c.name}: effective weight ${c.effectiveWeight}% to new (configured ${c.configuredWeight}%)${expires}\n`)
  }
  if (c.warning !== undefined) process.stderr.write(`warning: ${c.warning}\n`)
  return 0
}

export async function rollback (argv: string[]): Promise<number> {
  const { values, args: [context] } = parse(argv, changeOptions, ['CONTEXT'])
  const body = { ...(values.reason === undefined ? {} : { reason: values.reason }), ...(values.ttl === undefined ? {} : { ttl: values.ttl }) }
  const answer = await callAdmin(values, 'POST', `/contexts/${encodeURIComponent(context)}/rollback`, body)
  return answer.status === 200 ? printChange(values, answer.body as ContextAnswer) : reportFailure('rollback', answer)
}

export async function weight (argv: string[]): Promise<number> {
  const { values, args: [context, percent] } = parse(argv, changeOptions, ['CONTEXT', 'PERCENT'])
  const w = Number(percent)
  const body = { weight: percent.trim() === '' || Number.isNaN(w) ? percent : w, ...(values.reason === undefined ? {} : { reason: values.reason }), ...(values.ttl === undefined ? {} : { ttl: values.ttl }) }
  const answer = await callAdmin(values, 'PUT', `/contexts/${encodeURIComponent(context)}/weight`, body)
  return answer.status === 200 ? printChange(values, answer.body as ContextAnswer) : reportFailure('weight', answer)
}
