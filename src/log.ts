import { pino, type Logger } from 'pino'
import pretty from 'pino-pretty'

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** The level named by `LOG_LEVEL` (or `--log-level`, which sets it); null when it names none. */
export function logLevel (env: NodeJS.ProcessEnv = process.env): string | null {
  const level = (env.LOG_LEVEL ?? 'info').toLowerCase()
  return LEVELS.includes(level) ? level : null
}

/**
 * The process's logger: JSON lines with ISO timestamps for log pipelines, and
 * readable text when standard output is a terminal.
 */
export function createLogger (env: NodeJS.ProcessEnv = process.env, tty = process.stdout.isTTY === true, destination: NodeJS.WritableStream = process.stdout): Logger {
  const options = { name: 'strangler', level: logLevel(env) ?? 'info', timestamp: pino.stdTimeFunctions.isoTime }
  if (!tty) return pino(options, destination)
  return pino(options, pretty({ destination, colorize: tty && destination === process.stdout, sync: true, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l', ignore: 'pid,hostname,name' }))
}
