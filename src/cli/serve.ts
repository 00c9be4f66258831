import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Strangler, StartError } from '../main.ts'

/** The config shipped in the package: what `npm start` and the demo run on. */
export const DEFAULT_CONFIG = fileURLToPath(new URL('../../config/routes.yaml', import.meta.url))

export const serveHelp = `Usage: strangler serve [--config FILE] [--no-watch]

Runs the proxy. The config file is --config, else $STRANGLER_CONFIG, else the
embedded default (config/routes.yaml). The file is watched and reloaded on
change (unless --no-watch); SIGHUP reloads it too. SIGTERM or SIGINT drains
and exits.`

export async function serve (argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, 'no-watch': { type: 'boolean' } }, strict: true })
  const configFile = values.config ?? process.env.STRANGLER_CONFIG ?? DEFAULT_CONFIG
  let s: Strangler
  try {
    s = await Strangler.start({ configFile, watch: values['no-watch'] !== true })
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
