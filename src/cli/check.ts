import path from 'node:path'
import { parseArgs } from 'node:util'
import { formatIssue, loadConfigFile } from '../config/index.ts'
import { UsageError } from './admin-client.ts'

export const checkHelp = `Usage: strangler check [--strict] FILE...

Validates config files, for config-PR pipelines. Every problem is printed as
FILE:LINE:COL message. An unset \${VAR} is a warning (pipelines hold no
secrets) unless --strict. Exit 0 when every file is valid, 1 when any is not.`

export async function check (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { strict: { type: 'boolean' } }, allowPositionals: true, strict: true })
  if (positionals.length === 0) throw new UsageError('name at least one config file')
  let invalid = 0
  for (const file of positionals) {
    const { config, errors, warnings } = loadConfigFile(path.resolve(file), { env: process.env, unsetVars: values.strict === true ? 'error' : 'warn' })
    for (const w of warnings) process.stdout.write(`${formatIssue({ ...w, file })} (warning)\n`)
    for (const e of errors) process.stdout.write(`${formatIssue({ ...e, file })}\n`)
    if (config === null) {
      invalid++
      process.stdout.write(`${file}: invalid, ${errors.length} error${errors.length === 1 ? '' : 's'}\n`)
    } else {
      process.stdout.write(`${file}: valid (${Object.keys(config.upstreams).length} upstreams, ${config.contexts.length} contexts, hash ${config.hash})\n`)
    }
  }
  return invalid === 0 ? 0 : 1
}
