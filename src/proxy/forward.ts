import type { IncomingMessage, ServerResponse } from 'node:http'
import { PassThrough, Transform, type TransformCallback } from 'node:stream'
import type { Dispatcher } from 'undici'
import { errorBody, errors, type ErrorDef } from '../errors.ts'
import type { Answers } from '../routing/answers.ts'
import type { Side } from '../types.ts'
import type { Gate, GatedHandler } from './gate.ts'
import { clientResponseHeaders } from './headers.ts'
import type { Capture } from '../shadow/capture.ts'
import type { RequestTrace } from './tracing.ts'

/** Why an upstream exchange failed: the `reason` label of strangler_upstream_errors_total. */
export const UPSTREAM_ERROR_REASONS = ['refused', 'reset', 'timeout', 'dns', 'protocol', 'tls', 'queue_timeout', 'other'] as const
export type UpstreamErrorReason = typeof UPSTREAM_ERROR_REASONS[number]
/** Why new's answer was replaced by legacy's: the `reason` of strangler_fallbacks_total. */
export const FALLBACK_REASONS = ['refused', 'reset', 'timeout', '5xx'] as const

/** Observes every proxied exchange; the defaults do nothing. */
export interface ForwardObserver {
  rejectedRequest (reason: 'body_too_large'): void
  fallback (context: string, reason: string): void
  /** The response to the client is complete (or failed after its headers), `status` as sent. */
  response (context: string, side: Side, status: number, seconds: number): void
  upstreamError (context: string, side: Side, reason: UpstreamErrorReason): void
}

export interface Target {
  gate: Gate
  origin: string
  path: string
  headers: string[]
  headersTimeout: number
  bodyTimeout: number
  /** 0: no limit. */
  maxBodyBytes: number
  /** Observes the answer for a shadow comparison; null for almost every request. */
  capture: Capture | null
  /** Where to retry, once, when this side fails before its response headers (the context's `fallback`). */
  fallback: Target | null
  /** Retry on a 5xx answer too. */
  fallbackOn5xx: boolean
  /** Set when `fallback` was asked to answer instead: why (the `reason` of strangler_fallbacks_total). */
  fellBack: string | null
  context: string
  side: Side
  /** The upstream's name (never its address): for logs and spans. */
  upstream: string
  /** The request's spans; `untraced` unless tracing is on. */
  trace: RequestTrace
  /** How Location and Set-Cookie map back to the client's paths; null when this side's paths are not rewritten. */
  answers: Answers | null
}

export function classify (err: NodeJS.ErrnoException): { reason: UpstreamErrorReason; error: ErrorDef } {
  switch (err.code) {
    case 'ECONNREFUSED': return { reason: 'refused', error: errors.UPSTREAM_UNAVAILABLE }
    case 'ECONNRESET': case 'EPIPE': case 'UND_ERR_SOCKET': case 'UND_ERR_CLOSED':
      return { reason: 'reset', error: errors.UPSTREAM_UNAVAILABLE }
    case 'UND_ERR_HEADERS_TIMEOUT': case 'UND_ERR_CONNECT_TIMEOUT': case 'UND_ERR_BODY_TIMEOUT': case 'ETIMEDOUT':
      return { reason: 'timeout', error: errors.UPSTREAM_TIMEOUT }
    case 'ENOTFOUND': case 'EAI_AGAIN': return { reason: 'dns', error: errors.UPSTREAM_UNAVAILABLE }
    case QUEUE_TIMEOUT: return { reason: 'queue_timeout', error: errors.UPSTREAM_BUSY }
  }
  // undici's HTTPParserError carries no code: its name says what it is.
  if (err.name === 'HTTPParserError' || err.code?.startsWith('HPE_') === true || err.code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || err.code === 'UND_ERR_INFO') {
    return { reason: 'protocol', error: errors.UPSTREAM_UNAVAILABLE }
  }
  if (err.code?.startsWith('ERR_TLS') === true || err.code?.startsWith('CERT_') === true || err.code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || err.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE') {
    return { reason: 'tls', error: errors.UPSTREAM_UNAVAILABLE }
  }
  return { reason: 'other', error: errors.UPSTREAM_UNAVAILABLE }
}

export function sendError (res: ServerResponse, e: ErrorDef): void {
  const body = errorBody(e)
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
  if (e.retryAfter !== undefined) headers['retry-after'] = e.retryAfter
  res.writeHead(e.status, headers)
  res.end(body)
}

const TOO_LARGE = 'STRANGLER_BODY_TOO_LARGE'
const QUEUE_TIMEOUT = 'STRANGLER_QUEUE_TIMEOUT'

/** Passes a request body on until it exceeds `limit` bytes, then fails it: the upstream never sees it complete. */
class BodyLimit extends Transform {
  #seen = 0
  constructor (private readonly limit: number) {
    super()
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen > this.limit) done(Object.assign(new Error('request body too large'), { code: TOO_LARGE }))
    else done(null, chunk)
  }
}

function hasBody (req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/**
 * One exchange, written against undici's raw handler interface: it hands over
 * raw header bytes and a resume callback without the wrapper objects of the
 * newer controller API, which matters on every request.
 */
class Exchange implements GatedHandler {
  gate: Gate | null = null
  private abort: ((err?: Error) => void) | null = null
  private status = 0
  private retried = false
  /** Answered in full at its head (204, 304): what undici reports after it changes nothing. */
  private answered = false

  constructor (
    private readonly res: ServerResponse,
    private readonly target: Target,
    private readonly observer: ForwardObserver,
    private readonly method: string,
    /** A body held in memory, replayable; null for no body (or a streamed one, which is never retried). */
    private readonly replay: Buffer | null,
    private readonly started = performance.now()
  ) {
    // A response closes once: on() spares once()'s wrapper and its removal.
    res.on('close', () => {
      if (!res.writableFinished && this.abort !== null) this.abort()
    })
  }

  abandoned (): boolean {
    return this.res.destroyed
  }

  queueTimeout (streamed: boolean): void {
    // The rest of the body is still on the connection, unread: it cannot carry another request.
    if (streamed) this.res.shouldKeepAlive = false
    this.onError(Object.assign(new Error('no upstream connection free within queueTimeout'), { code: QUEUE_TIMEOUT }))
  }

  onConnect (abort: (err?: Error) => void): void {
    if (this.res.destroyed) abort()
    else this.abort = abort
  }

  /** Sends the request to the fallback target instead; this exchange then ends silently. */
  private retry (reason: string): boolean {
    const next = this.target.fallback
    if (next === null || this.retried || this.res.headersSent || this.res.destroyed) return false
    this.retried = true
    this.target.fellBack = reason
    this.observer.fallback(this.target.context, reason)
    this.target.trace.fallback(next, reason)
    dispatch(this.res, next, this.observer, this.method, this.replay, this.started)
    return true
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true
    if (statusCode >= 500 && this.target.fallbackOn5xx && this.retry('5xx')) {
      this.abort?.()
      return false
    }
    this.status = statusCode
    this.target.capture?.head(statusCode, rawHeaders)
    this.res.writeHead(statusCode, statusText, clientResponseHeaders(rawHeaders, this.target.answers))
    // Never a body, whatever Content-Length says (RFC 9110 §6.4.1); undici would fail one that has it.
    if (statusCode === 204 || statusCode === 304) {
      this.finish()
      this.answered = true
      return true
    }
    this.res.on('drain', resume)
    return true
  }

  onData (chunk: Buffer): boolean {
    this.target.capture?.data(chunk)
    return this.res.write(chunk)
  }

  onComplete (): void {
    // The upstream connection is free only now, even when the client was answered at the head.
    this.gate?.release()
    this.gate = null
    if (this.answered) return
    this.finish()
  }

  /** The client's response is complete. */
  private finish (): void {
    this.target.capture?.end()
    this.res.end()
    this.observer.response(this.target.context, this.target.side, this.status, (performance.now() - this.started) / 1000)
  }

  onError (err: Error): void {
    if (this.gate !== null) {
      this.gate.release()
      this.gate = null
    }
    const { res, target } = this
    if (this.answered) return
    target.capture?.fail(err)
    if (res.destroyed || this.retried) return
    if ((err as NodeJS.ErrnoException).code === TOO_LARGE && !res.headersSent) {
      this.observer.rejectedRequest('body_too_large')
      res.shouldKeepAlive = false
      sendError(res, errors.BODY_TOO_LARGE)
      return
    }
    const { reason, error } = classify(err as NodeJS.ErrnoException)
    this.observer.upstreamError(target.context, target.side, reason)
    if ((reason === 'refused' || reason === 'reset' || reason === 'timeout') && this.retry(reason)) return
    if (res.headersSent) {
      // A short body must never look complete: abort the client connection.
      res.destroy(err)
      this.observer.response(target.context, target.side, this.status, (performance.now() - this.started) / 1000)
      return
    }
    sendError(res, error)
    this.observer.response(target.context, target.side, error.status, (performance.now() - this.started) / 1000)
  }
}

function dispatch (res: ServerResponse, target: Target, observer: ForwardObserver, method: string, body: Buffer | Transform | null, started?: number): void {
  target.gate.dispatch({
    origin: target.origin,
    path: target.path,
    method: method as Dispatcher.HttpMethod,
    headers: target.headers,
    body,
    headersTimeout: target.headersTimeout,
    bodyTimeout: target.bodyTimeout
  }, new Exchange(res, target, observer, method, body instanceof Buffer ? body : null, started))
}

export function forward (req: IncomingMessage, res: ServerResponse, target: Target, observer: ForwardObserver): void {
  let body: Transform | null = null
  if (hasBody(req)) {
    // undici destroys a failed request's body stream; destroying `req` itself would
    // reset the client's socket before it could be told 502.
    body = target.maxBodyBytes > 0 ? new BodyLimit(target.maxBodyBytes) : new PassThrough()
    req.pipe(body)
  }
  dispatch(res, target, observer, req.method as string, body)
}

/**
 * Forwards a request whose body (at most `limit` bytes, announced by
 * Content-Length) is first held in memory, so that a fallback can replay it.
 */
export function forwardHeld (req: IncomingMessage, res: ServerResponse, target: Target, observer: ForwardObserver): void {
  const parts: Buffer[] = []
  req.on('data', (c: Buffer) => parts.push(c))
  req.once('end', () => dispatch(res, target, observer, req.method as string, Buffer.concat(parts)))
}
