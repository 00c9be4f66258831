import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { logLevel } from '../log.ts'
import { Strangler, StartError, startStrangler } from '../main.ts'
import { UsageError } from './admin-client.ts'

/** The config shipped in the package: what `npm start` and the demo run on. */
export const DEFAULT_CONFIG = fileURLToPath(new URL('../../config/routes.yaml', import.meta.url))

export const serveHelp = `Usage: strangler serve [--config FILE] [--no-watch] [--log-level LEVEL]

Runs the proxy. The config file is --config, else $STRANGLER_CONFIG, else the
embedded default (config/routes.yaml). The file is watched and reloaded on
change (unless --no-watch); SIGHUP reloads it too. SIGTERM or SIGINT drains
and exits.

Logs are JSON lines with ISO timestamps, or readable text on a terminal.
--log-level (or $LOG_LEVEL): fatal, error, warn, info (default), debug, trace
or silent.`

export async function serve (argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, 'no-watch': { type: 'boolean' }, 'log-level': { type: 'string' } }, strict: true })
  // Through the environment, so that worker processes log at the same level.
  if (values['log-level'] !== undefined) process.env.LOG_LEVEL = values['log-level']
  if (logLevel() === null) throw new UsageError(`log level "${process.env.LOG_LEVEL}" is not one of fatal, error, warn, info, debug, trace, silent`)
  const configFile = values.config ?? process.env.STRANGLER_CONFIG ?? DEFAULT_CONFIG
  let s: Strangler
  try {
    s = await startStrangler({ configFile, watch: values['no-watch'] !== true })
  } catch (err) {
    if (err instanceof StartError) {
      process.stderr.write(`${err.errors.join('\n')}\n${err.errors.length} error(s): ${configFile} not loaded\n`)
      return 1
    }
    throw err
  }
  process.on('SIGHUP', () => { void s.reload('signal') })
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) process.exit(1)
    stopping = true
    s.log.info({ signal }, 'shutting down')
    s.close().then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  return await new Promise<number>(() => {})
}
