import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { parseDuration } from '../config/index.ts'
import { accepts, encoded, openMetrics, OPENMETRICS, PROMETHEUS, wantsOpenMetrics } from './exposition.ts'
import type { SafetyStatus } from '../safety/safety.ts'
import type { Config, Context } from '../types.ts'
import { bearerMatches } from './auth.ts'
import type { MetricFamily } from './board/rates.ts'
import { registerBoard } from './board/routes.ts'
import { contextFingerprint } from '../state/override-rules.ts'
import type { Overrides } from '../state/overrides.ts'
import { errorJSON, errors, StoreUnavailableError, StranglerError, type ErrorDef } from '../errors.ts'
import type { Shadows } from '../shadow/shadows.ts'
import { contextStatus, stateStatus } from './status.ts'

export type ReloadOutcome = { ok: true; changed: boolean; hash: string } | { ok: false; errors: string[] }

export interface AdminDeps {
  config: () => Config
  loadedAt: () => Date
  lastReloadError: () => string[] | null
  ready: () => boolean
  reload: () => Promise<ReloadOutcome>
  /** Resolves when the last change reached every proxy worker; a warning when some did not confirm. */
  synced: () => Promise<string | null>
  overrides: Overrides
  /** Dark-launch results; null when the proxy runs in worker processes. */
  shadows: Shadows | null
  /** Guard and ramp state of a context. */
  safety: (c: Context) => SafetyStatus
  /** The Prometheus text of every metric, in pieces. */
  metrics: () => Promise<AsyncIterable<string>>
  /** The same metrics as prom-client JSON (aggregated over workers), for the board's live numbers. */
  metricsJSON: () => Promise<MetricFamily[]>
  log: Logger
}

function fail (reply: FastifyReply, e: StranglerError): FastifyReply {
  const body = errorJSON(e)
  return reply.code(body.status).send(body)
}

/** An answer of kind `kind`, its message filled with `details`. */
const problem = (kind: ErrorDef, ...details: string[]): StranglerError => new StranglerError(kind, details)

interface MutationBody { weight?: unknown; reason?: unknown; ttl?: unknown }

/** Validates a mutation body; returns an error message or the parsed fields. */
function parseBody (body: unknown, fields: ReadonlyArray<'weight' | 'reason' | 'ttl'>): string | { weight?: number; reason?: string; ttlMs?: number } {
  if (body === undefined || body === null) return {}
  if (typeof body !== 'object' || Array.isArray(body)) return 'the body must be a JSON object'
  const unknown = Object.keys(body).filter(k => !(fields as string[]).includes(k))
  if (unknown.length > 0) return `unknown field ${unknown.map(k => `"${k}"`).join(', ')}; allowed: ${fields.join(', ')}`
  const b = body as MutationBody
  const out: { weight?: number; reason?: string; ttlMs?: number } = {}
  if (b.reason !== undefined) {
    if (typeof b.reason !== 'string' || b.reason.length > 500) return '"reason" must be a string of at most 500 characters'
    out.reason = b.reason
  }
  if (b.ttl !== undefined) {
    const ms = typeof b.ttl === 'string' ? parseDuration(b.ttl) : null
    if (ms === null) return '"ttl" must be a duration such as "30m" or "2h"'
    out.ttlMs = ms
  }
  if (b.weight !== undefined) out.weight = b.weight as number
  return out
}

function unknownContext (name: string, config: Config): StranglerError {
  const known = config.contexts.map(c => c.name)
  return problem(errors.UNKNOWN_CONTEXT, name, known.length === 0 ? '(none)' : known.join(', '))
}

function weightError (w: unknown): string | null {
  if (typeof w !== 'number' || !Number.isFinite(w)) return '"weight" must be a number from 0 to 100'
  if (w < 0 || w > 100) return `"weight" must be from 0 to 100, got ${w}`
  if (!/^\d+(\.\d{1,2})?$/.test(String(w))) return `"weight" has at most two decimals, got ${w}`
  return null
}

/**
 * The admin listener: health, metrics, status and the runtime controls. Never on
 * the proxy port. Mutations are POST/PUT/DELETE behind the bearer token.
 */
export function createAdminServer (deps: AdminDeps): FastifyInstance {
  // Fastify logs every request at info: the admin child logs warnings and errors only.
  const app = Fastify({ loggerInstance: deps.log.child({ component: 'admin' }, { level: deps.log.levelVal > 40 ? deps.log.level : 'warn' }) as FastifyBaseLogger, bodyLimit: 16 * 1024 })
  const { overrides } = deps

  app.setNotFoundHandler((req, reply) => fail(reply, problem(errors.NOT_FOUND, req.method, req.url.split('?')[0])))
  app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
    return fail(reply, status === 500 ? problem(errors.INTERNAL) : new StranglerError(errors.BAD_ADMIN_REQUEST, [err.message], { status }))
  })

  async function authorize (req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const token = deps.config().server.adminToken
    if (token === null) return void fail(reply, problem(errors.ADMIN_DISABLED))
    if (!bearerMatches(req.headers.authorization, token)) return void fail(reply, problem(errors.UNAUTHORIZED))
  }

  /** Reads that reveal the topology need the token too when server.boardAuth is on. */
  async function authorizeRead (req: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (deps.config().server.boardAuth) await authorize(req, reply)
  }

  function contextOr404 (name: string, reply: FastifyReply): Config['contexts'][number] | null {
    const config = deps.config()
    const ctx = config.contexts.find(c => c.name === name)
    if (ctx === undefined) fail(reply, unknownContext(name, config))
    return ctx ?? null
  }

  async function applyOverride (name: string, weight: number, reason: string, ttlMs: number | undefined, action: string, reply: FastifyReply): Promise<FastifyReply> {
    const config = deps.config()
    const ctx = config.contexts.find(c => c.name === name)
    if (ctx === undefined) return fail(reply, unknownContext(name, config))
    const before = overrides.get(name)?.weight ?? ctx.weight
    const now = new Date()
    const refused = await unavailable(() => overrides.set(name, {
      weight,
      reason,
      by: 'admin',
      at: now.toISOString(),
      expiresAt: ttlMs === undefined ? null : new Date(now.getTime() + ttlMs).toISOString(),
      configHash: config.hash,
      contextHash: contextFingerprint(ctx)
    }))
    if (refused instanceof StranglerError) return fail(reply, refused)
    deps.log.info({ audit: true, action, context: name, by: 'admin', weight: { from: before, to: weight }, reason, ttlMs: ttlMs ?? null }, `${action} ${name}: weight ${before} → ${weight}`)
    const status = contextStatus(config, overrides).find(c => c.name === name)
    return await answer(reply, status, refused.warning, 'The override applies now but could not be saved ($); it will not survive a restart.')
  }

  /** A change's answer: whether a local store saved it, and a warning for each thing the operator must know. */
  async function answer (reply: FastifyReply, body: object | undefined, warning: string | null, unsaved: string): Promise<FastifyReply> {
    const unconfirmed = await deps.synced()
    const persisted = overrides.persistError === null
    const warnings = [persisted ? null : unsaved.replace('$', overrides.persistError as string), unconfirmed, warning].filter(w => w !== null)
    return reply.send({ ...body, persisted, ...(warnings.length === 0 ? {} : { warning: warnings.join(' ') }) })
  }

  /** Runs a change; a shared store that cannot take it makes it a 503, applied nowhere. */
  async function unavailable (change: () => Promise<string | null>): Promise<StranglerError | { warning: string | null }> {
    try {
      return { warning: await change() }
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err
      deps.log.error({ err: err.message }, 'admin change refused: the shared state store is unreachable')
      return problem(errors.STATE_STORE_DOWN, err.message)
    }
  }

  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_req, reply) => deps.ready() ? { status: 'ready' } : reply.code(503).send({ status: 'draining' }))
  app.get('/metrics', async (req, reply) => {
    const text = await deps.metrics()
    const om = wantsOpenMetrics(req.headers.accept)
    const gzip = accepts(req.headers['accept-encoding'] ?? '', 'gzip')
    reply.type(om ? OPENMETRICS : PROMETHEUS).header('vary', 'accept, accept-encoding')
    if (gzip) reply.header('content-encoding', 'gzip')
    return reply.send(encoded(om ? openMetrics(text) : text, gzip))
  })
  app.get('/status', { onRequest: authorizeRead }, async () => {
    const config = deps.config()
    return {
      config: { hash: config.hash, loadedAt: deps.loadedAt().toISOString(), lastError: deps.lastReloadError(), file: config.file },
      state: stateStatus(overrides),
      contexts: contextStatus(config, overrides, deps.shadows, deps.safety),
      dormantOverrides: overrides.dormant()
    }
  })

  registerBoard(app, { ...deps, status: () => contextStatus(deps.config(), overrides, deps.shadows, deps.safety), dormant: () => overrides.dormant(), authorizeRead })

  app.get<{ Params: { name: string } }>('/contexts/:name/diffs', { onRequest: authorize }, async (req, reply) => {
    const ctx = contextOr404(req.params.name, reply)
    if (ctx === null) return reply
    if (deps.shadows === null) return fail(reply, problem(errors.BAD_ADMIN_REQUEST, 'Shadow diffs are kept per process; with server.workers > 1 read strangler_shadow_requests_total instead.'))
    return { context: ctx.name, shadow: deps.shadows.status(ctx.name, ctx.shadow), diffs: deps.shadows.diffs(ctx.name) }
  })

  app.post<{ Params: { name: string } }>('/contexts/:name/rollback', { onRequest: authorize }, async (req, reply) => {
    const body = parseBody(req.body, ['reason', 'ttl'])
    if (typeof body === 'string') return fail(reply, problem(errors.BAD_ADMIN_REQUEST, body))
    return await applyOverride(req.params.name, 0, body.reason ?? 'rollback', body.ttlMs, 'rollback', reply)
  })

  app.put<{ Params: { name: string } }>('/contexts/:name/weight', { onRequest: authorize }, async (req, reply) => {
    const body = parseBody(req.body, ['weight', 'reason', 'ttl'])
    if (typeof body === 'string') return fail(reply, problem(errors.BAD_ADMIN_REQUEST, body))
    const wrong = weightError(body.weight)
    if (wrong !== null) return fail(reply, problem(errors.BAD_WEIGHT, wrong))
    return await applyOverride(req.params.name, body.weight as number, body.reason ?? 'weight set through the admin API', body.ttlMs, 'weight', reply)
  })

  app.delete<{ Params: { name: string } }>('/contexts/:name/override', { onRequest: authorize }, async (req, reply) => {
    const { name } = req.params
    const dormant = overrides.dormant().some(d => d.context === name)
    if (!dormant) {
      const ctx = contextOr404(name, reply)
      if (ctx === null) return reply
      if (overrides.get(name) === null) return fail(reply, problem(errors.NO_OVERRIDE, name))
    }
    const refused = await unavailable(() => overrides.clear(name, 'admin', 'cleared through the admin API'))
    if (refused instanceof StranglerError) return fail(reply, refused)
    // A dormant override's context is not in the config: there is no weight to show.
    const status = contextStatus(deps.config(), overrides).find(c => c.name === name) ?? { name, override: null }
    return await answer(reply, status, refused.warning, 'The override is cleared now but that could not be saved ($); after a restart it applies again until it is cleared.')
  })

  app.post('/reload', { onRequest: authorize }, async (_req, reply) => {
    const result = await deps.reload()
    await deps.synced()
    return result.ok ? reply.send(result) : fail(reply, new StranglerError(errors.CONFIG_INVALID, [], { errors: result.errors }))
  })

  return app
}
