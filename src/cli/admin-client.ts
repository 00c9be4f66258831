import { parseArgs, type ParseArgsConfig } from 'node:util'
import { errors, StranglerError } from '../errors.ts'

export const adminOptions = {
  admin: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' }
} as const satisfies ParseArgsConfig['options']

export const adminOptionsHelp = `  --admin URL   admin API (default $STRANGLER_ADMIN_URL, else http://127.0.0.1:9090)
  --token T     admin token (default $STRANGLER_ADMIN_TOKEN)
  --json        print the API's JSON answer`

/** The command line was used wrongly: the command's help follows the message (exit code 2). */
export class UsageError extends StranglerError {
  constructor (message: string) {
    super(errors.USAGE, [message])
  }
}

export function parse<O extends ParseArgsConfig['options']> (argv: string[], options: O, positionals: string[]): { values: ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>>['values']; args: string[] } {
  const { values, positionals: args } = parseArgs({ args: argv, options, allowPositionals: true, strict: true })
  if (args.length !== positionals.length) throw new UsageError(`expected ${positionals.join(' ')}`)
  return { values, args }
}

export interface AdminAnswer {
  status: number
  body: unknown
}

/** One call to the admin API; a network failure is reported as a clear message, not a stack. */
export async function callAdmin (values: { admin?: string; token?: string }, method: string, route: string, body?: unknown): Promise<AdminAnswer> {
  const base = (values.admin ?? process.env.STRANGLER_ADMIN_URL ?? 'http://127.0.0.1:9090').replace(/\/+$/, '')
  const token = values.token ?? process.env.STRANGLER_ADMIN_TOKEN
  const headers: Record<string, string> = {}
  if (token !== undefined && token !== '') headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  let res: Response
  try {
    res = await fetch(`${base}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000) })
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message
    throw new StranglerError(errors.ADMIN_UNREACHABLE, [base, cause])
  }
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = JSON.parse(text) } catch {}
  return { status: res.status, body: parsed }
}

/** Prints an admin error the way an operator reads it and returns the exit code 1. */
export function reportFailure (command: string, answer: AdminAnswer): number {
  const b = answer.body as { code?: string; message?: string; errors?: string[] }
  process.stderr.write(`strangler ${command}: ${answer.status} ${b?.code ?? ''} ${b?.message ?? String(answer.body)}\n`)
  for (const e of b?.errors ?? []) process.stderr.write(`  ${e}\n`)
  return 1
}
