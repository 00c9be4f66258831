import type { Upstream } from '../types.ts'
import { durationAt, isRecord, type Problems } from './problems.ts'
import { parseUpstreamUrl } from './upstream-url.ts'

const DEFAULT_TIMEOUT_MS = 30_000
const DEFAULT_BODY_TIMEOUT_MS = 300_000
/** See README, "Upstream connections": a cap a typical monolith's worker pool can take, and the measured overload tail. */
const DEFAULT_MAX_CONNECTIONS = 64
const DEFAULT_QUEUE_TIMEOUT_MS = 10_000

/** Upstreams by name, in a prototype-free object: `constructor` is a valid upstream name. */
export function buildUpstreams (problems: Problems, value: unknown): Record<string, Upstream> {
  const upstreams: Record<string, Upstream> = Object.create(null)
  if (!isRecord(value)) return upstreams
  for (const name of problems.keys(['upstreams'], value)) {
    const raw = value[name]
    if (!isRecord(raw)) continue
    const at = ['upstreams', name]
    let address = { origin: '', basePath: '', host: '' }
    if (typeof raw.url === 'string') {
      const parsed = parseUpstreamUrl(raw.url)
      if (typeof parsed === 'string') problems.error([...at, 'url'], parsed)
      else address = parsed
    }
    upstreams[name] = {
      name,
      ...address,
      timeoutMs: durationAt(problems, [...at, 'timeout'], raw.timeout, DEFAULT_TIMEOUT_MS),
      bodyTimeoutMs: durationAt(problems, [...at, 'bodyTimeout'], raw.bodyTimeout, DEFAULT_BODY_TIMEOUT_MS),
      preserveHost: raw.preserveHost === true,
      maxConnections: typeof raw.maxConnections === 'number' ? raw.maxConnections : DEFAULT_MAX_CONNECTIONS,
      queueTimeoutMs: durationAt(problems, [...at, 'queueTimeout'], raw.queueTimeout, DEFAULT_QUEUE_TIMEOUT_MS)
    }
  }
  return upstreams
}
