import { format } from 'node:util'

/*
 * Every error a client, an operator or a script can see, with a stable code,
 * in this one module (fastify's createError pattern: a kind is its code, its
 * message with `%s` for the details, and its HTTP status when it is answered).
 * Every answer has one shape, data plane and admin alike:
 * `{statusCode, status, code, message}` (plus `errors` where there is a list);
 * `statusCode` and `status` both carry the HTTP status, so that scripts written
 * against either of the two former shapes keep working. The proxy's bodies are
 * generic on purpose: they never name an upstream or its address.
 */

/** A kind of error: its stable code and its message (`%s`: the details, in order). */
export interface ErrorKind {
  readonly code: string
  readonly message: string
}

/** A kind of error that is answered over HTTP. */
export interface ErrorDef extends ErrorKind {
  readonly status: number
  /** Seconds for a Retry-After header, when the client should come back. */
  readonly retryAfter?: number
}

function def (code: string, status: number, message: string, retryAfter?: number): ErrorDef {
  return Object.freeze(retryAfter === undefined ? { code, status, message } : { code, status, message, retryAfter })
}

function thrown (code: string, message: string): ErrorKind {
  return Object.freeze({ code, message })
}

export const errors = Object.freeze({
  // The proxy (data plane).
  BAD_PATH: def('STRANGLER_BAD_PATH', 400, 'The request path is not canonical: dot segments, encoded slashes, backslashes, NUL, control bytes and malformed escapes are refused.'),
  BAD_REQUEST: def('STRANGLER_BAD_REQUEST', 400, 'The request could not be parsed.'),
  BODY_TOO_LARGE: def('STRANGLER_BODY_TOO_LARGE', 413, 'The request body is larger than this proxy accepts (server.maxBodyBytes).'),
  UPSTREAM_UNAVAILABLE: def('STRANGLER_UPSTREAM_UNAVAILABLE', 502, 'The service behind this proxy did not answer.'),
  UPSTREAM_TIMEOUT: def('STRANGLER_UPSTREAM_TIMEOUT', 504, 'The service behind this proxy did not answer in time.'),
  UPSTREAM_BUSY: def('STRANGLER_UPSTREAM_BUSY', 503, 'The service behind this proxy is busy; retry later.', 1),
  SHUTTING_DOWN: def('STRANGLER_SHUTTING_DOWN', 503, 'The proxy is shutting down; retry on another instance.'),
  // The admin API.
  ADMIN_DISABLED: def('STRANGLER_ADMIN_DISABLED', 403, 'Admin mutations are disabled because no admin token is configured. Set server.adminToken in the config (for example adminToken: ${STRANGLER_ADMIN_TOKEN}) and start the proxy with that variable set.'),
  UNAUTHORIZED: def('STRANGLER_UNAUTHORIZED', 401, 'Send the admin token as "Authorization: Bearer <token>".'),
  UNKNOWN_CONTEXT: def('STRANGLER_UNKNOWN_CONTEXT', 404, 'No context named "%s". Contexts: %s.'),
  NO_OVERRIDE: def('STRANGLER_NO_OVERRIDE', 404, 'Context "%s" has no runtime override; it runs on its configured weight.'),
  /** The admin API's BAD_REQUEST: the message is the problem found in the request. */
  BAD_ADMIN_REQUEST: def('STRANGLER_BAD_REQUEST', 400, '%s'),
  BAD_WEIGHT: def('STRANGLER_BAD_WEIGHT', 400, '%s'),
  CONFIG_INVALID: def('STRANGLER_CONFIG_INVALID', 422, 'The config file is invalid; the last good config keeps serving.'),
  STATE_STORE_DOWN: def('STRANGLER_STATE_STORE_DOWN', 503, 'Not applied on any replica: %s. Replicas keep serving with the overrides they have. Retry once the store is back (strangler_state_store_up), or change the weight in the YAML.'),
  NOT_FOUND: def('STRANGLER_NOT_FOUND', 404, 'No admin route %s %s.'),
  INTERNAL: def('STRANGLER_INTERNAL', 500, 'Internal error; see the proxy log.'),
  // Thrown, and reported by the command line or the log.
  CONFIG_REFUSED: thrown('STRANGLER_CONFIG_INVALID', 'invalid config:\n%s'),
  USAGE: thrown('STRANGLER_USAGE', '%s'),
  ADMIN_UNREACHABLE: thrown('STRANGLER_ADMIN_UNREACHABLE', 'cannot reach the admin API at %s (%s); set --admin or STRANGLER_ADMIN_URL'),
  STATE_FILE_INVALID: thrown('STRANGLER_STATE_FILE_INVALID', '%s'),
  TABLE_INVALID: thrown('STRANGLER_TABLE_INVALID', '%s: the config was not validated')
})

/** An error of a registered kind: `code`, its HTTP status when it is answered, and the message filled with `details`. */
export class StranglerError extends Error {
  readonly code: string
  readonly statusCode: number | undefined
  /** Every problem, where there is a list (an invalid config). */
  readonly errors: string[] | undefined

  constructor (kind: ErrorKind, details: ReadonlyArray<string | number> = [], extra: { status?: number; errors?: string[] } = {}) {
    super(details.length === 0 ? kind.message : format(kind.message, ...details))
    this.name = 'StranglerError'
    this.code = kind.code
    this.statusCode = extra.status ?? (kind as Partial<ErrorDef>).status
    this.errors = extra.errors
  }
}

/** The config could not be loaded at start: `errors` lists every problem, with its position. */
export class StartError extends StranglerError {
  declare readonly errors: string[]

  constructor (problems: string[]) {
    super(errors.CONFIG_REFUSED, [problems.join('\n')], { errors: problems })
  }
}

/**
 * The shared state store is unreachable: the change was applied nowhere. The
 * message says what failed; the admin API answers it inside STATE_STORE_DOWN's.
 */
export class StoreUnavailableError extends StranglerError {
  constructor (detail: string) {
    super(errors.STATE_STORE_DOWN)
    this.message = detail
  }
}

/** The shape of every error answer. */
export interface ErrorAnswer {
  statusCode: number
  status: number
  code: string
  message: string
  errors?: string[]
}

/** The answer for a thrown error (a StranglerError without a status is answered 500). */
export function errorJSON (err: StranglerError): ErrorAnswer {
  const status = err.statusCode ?? 500
  const out: ErrorAnswer = { statusCode: status, status, code: err.code, message: err.message }
  if (err.errors !== undefined) out.errors = err.errors
  return out
}

const bodies = new Map<ErrorDef, string>()

/** The JSON body for an error the proxy answers, built once per error kind. */
export function errorBody (e: ErrorDef): string {
  let body = bodies.get(e)
  if (body === undefined) {
    body = JSON.stringify({ statusCode: e.status, status: e.status, code: e.code, message: e.message })
    bodies.set(e, body)
  }
  return body
}
