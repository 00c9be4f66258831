import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import type { HostPort, ServerConfig } from '../types.ts'
import { formatHostPort, isAddressOrCidr, parseHostPort, sameSocket } from './address.ts'
import type { Path } from './locate.ts'
import { durationAt, isRecord, type Problems } from './problems.ts'

const DEFAULT_LISTEN: HostPort = Object.freeze({ host: '0.0.0.0', port: 8080 })
const DEFAULT_ADMIN: HostPort = Object.freeze({ host: '127.0.0.1', port: 9090 })
const DEFAULT_DRAIN_MS = 30_000
const DEFAULT_STATE_FILE = 'strangler-state.json'

/** `baseDir` is where a relative stateFile (and the default one) lives: the config file's directory. */
export function buildServer (problems: Problems, value: unknown, baseDir: string): ServerConfig {
  const server = isRecord(value) ? value : {}
  const listen = hostPortAt(problems, ['server', 'listen'], server.listen)
  const admin = hostPortAt(problems, ['server', 'admin'], server.admin)
  const bothValid = listen !== null && admin !== null
  const effectiveListen = listen ?? DEFAULT_LISTEN
  const effectiveAdmin = admin ?? DEFAULT_ADMIN
  if (bothValid && sameSocket(effectiveListen, effectiveAdmin)) {
    const at = server.admin !== undefined ? 'admin' : 'listen'
    problems.error(
      ['server', at],
      `listen and admin must not share an address (${formatHostPort(effectiveListen)} and ${formatHostPort(effectiveAdmin)}): the admin API never shares the proxy's port`
    )
  }
  const stateFile = typeof server.stateFile === 'string' && server.stateFile !== '' ? server.stateFile : DEFAULT_STATE_FILE
  return {
    listen: effectiveListen,
    admin: effectiveAdmin,
    adminToken: typeof server.adminToken === 'string' && server.adminToken !== '' ? server.adminToken : null,
    boardAuth: server.boardAuth === true,
    trustProxy: trustProxyAt(problems, server.trustProxy),
    stateFile: resolve(baseDir, stateFile),
    accessLog: server.accessLog === true,
    accessLogQuery: server.accessLogQuery === true,
    drainTimeoutMs: durationAt(problems, ['server', 'drainTimeout'], server.drainTimeout, DEFAULT_DRAIN_MS),
    ...timeoutsAt(problems, server.headersTimeout, server.requestTimeout),
    maxHeaderBytes: typeof server.maxHeaderBytes === 'number' ? server.maxHeaderBytes : 16_384,
    maxBodyBytes: typeof server.maxBodyBytes === 'number' ? server.maxBodyBytes : 0,
    underscoreHeaders: server.underscoreHeaders === 'keep' ? 'keep' : 'drop',
    workers: workersAt(problems, server.workers),
    state: stateAt(problems, server.state)
  }
}

function stateAt (problems: Problems, value: unknown): ServerConfig['state'] {
  const redis = isRecord(value) && isRecord(value.redis) ? value.redis : null
  if (redis === null || typeof redis.url !== 'string') return null
  const url = redis.url
  const valid = url.startsWith('unix:///') || (URL.canParse(url) && /^rediss?:$/.test(new URL(url).protocol) && new URL(url).hostname !== '')
  if (!valid) problems.error(['server', 'state', 'redis', 'url'], `url "${url.replace(/\/\/[^@/]*@/, '//***@')}" is not a Redis URL (redis://host:6379, rediss://user:password@host:6380/0 or unix:///path/to/redis.sock)`)
  return { redis: { url, keyPrefix: typeof redis.keyPrefix === 'string' ? redis.keyPrefix : 'strangler:' } }
}

/** Node refuses a headers timeout longer than the request timeout: say so, or shorten the default. */
function timeoutsAt (problems: Problems, headers: unknown, request: unknown): { headersTimeoutMs: number; requestTimeoutMs: number } {
  const requestTimeoutMs = durationAt(problems, ['server', 'requestTimeout'], request, 300_000)
  const headersTimeoutMs = durationAt(problems, ['server', 'headersTimeout'], headers, Math.min(30_000, requestTimeoutMs))
  if (headersTimeoutMs > requestTimeoutMs) problems.error(['server', 'headersTimeout'], 'headersTimeout must not be longer than requestTimeout (the headers are part of the request)')
  return { headersTimeoutMs, requestTimeoutMs }
}

function workersAt (problems: Problems, value: unknown): number {
  if (value === 'auto') return availableParallelism()
  if (value === undefined || (Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 64)) return (value as number | undefined) ?? 1
  problems.error(['server', 'workers'], `workers must be a number from 1 to 64, or auto (one per core); got ${JSON.stringify(value)}`)
  return 1
}

/** The address at path, undefined when absent (use the default), null when invalid. */
function hostPortAt (problems: Problems, path: Path, value: unknown): HostPort | undefined | null {
  if (value === undefined) return undefined
  if (typeof value !== 'string') return null
  const parsed = parseHostPort(value)
  if (!parsed) problems.error(path, `${path[path.length - 1]} "${value}" is not a valid host:port (such as 0.0.0.0:8080, localhost:8080 or [::]:8080)`)
  return parsed
}

function trustProxyAt (problems: Problems, value: unknown): string[] {
  if (!Array.isArray(value)) return []
  const entries: string[] = []
  value.forEach((entry, i) => {
    if (typeof entry !== 'string') return
    if (isAddressOrCidr(entry)) entries.push(entry)
    else problems.error(['server', 'trustProxy', i], `trustProxy entry "${entry}" is not an IP address or CIDR (such as 10.0.0.0/8, 192.0.2.7 or fd00::/8)`)
  })
  return entries
}
