/** Every error a client or an operator can see, with a stable code. Bodies are
 * generic on purpose: they never name an upstream or its address. */

export interface ErrorDef {
  code: string
  status: number
  message: string
  /** Seconds for a Retry-After header, when the client should come back. */
  retryAfter?: number
}

function def (code: string, status: number, message: string, retryAfter?: number): ErrorDef {
  return Object.freeze(retryAfter === undefined ? { code, status, message } : { code, status, message, retryAfter })
}

export const errors = Object.freeze({
  BAD_PATH: def('STRANGLER_BAD_PATH', 400, 'The request path is not canonical: dot segments, encoded slashes, backslashes, NUL, control bytes and malformed escapes are refused.'),
  BAD_REQUEST: def('STRANGLER_BAD_REQUEST', 400, 'The request could not be parsed.'),
  BODY_TOO_LARGE: def('STRANGLER_BODY_TOO_LARGE', 413, 'The request body is larger than this proxy accepts (server.maxBodyBytes).'),
  UPSTREAM_UNAVAILABLE: def('STRANGLER_UPSTREAM_UNAVAILABLE', 502, 'The service behind this proxy did not answer.'),
  UPSTREAM_TIMEOUT: def('STRANGLER_UPSTREAM_TIMEOUT', 504, 'The service behind this proxy did not answer in time.'),
  UPSTREAM_BUSY: def('STRANGLER_UPSTREAM_BUSY', 503, 'The service behind this proxy is busy; retry later.', 1),
  SHUTTING_DOWN: def('STRANGLER_SHUTTING_DOWN', 503, 'The proxy is shutting down; retry on another instance.')
})

const bodies = new Map<ErrorDef, string>()

/** The JSON body for an error, built once per error kind. */
export function errorBody (e: ErrorDef): string {
  let body = bodies.get(e)
  if (body === undefined) {
    body = JSON.stringify({ statusCode: e.status, code: e.code, message: e.message })
    bodies.set(e, body)
  }
  return body
}
