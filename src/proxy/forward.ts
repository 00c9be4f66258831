import type { ServerResponse } from 'node:http'
// Not the global: globalThis.performance is a getter, run on every access.
import { performance } from 'node:perf_hooks'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { errorBody, errors, type ErrorDef } from '../errors.ts'
import type { Side } from '../types.ts'
import type { Gate, GatedHandler } from './gate.ts'
import { clientResponseHeaders } from './headers.ts'
import type { Answers } from '../routing/answers.ts'
import type { Capture } from '../shadow/capture.ts'
import type { Target } from './plan.ts'
import type { UpstreamPools } from './upstreams.ts'

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

/** The code of the error a request body stream fails with past its limit (see BodyLimit in dispatch.ts). */
export const TOO_LARGE = 'STRANGLER_BODY_TOO_LARGE'
const QUEUE_TIMEOUT = 'STRANGLER_QUEUE_TIMEOUT'

/**
 * Answers the client from an upstream exchange, written against undici's raw
 * handler interface: it hands over raw header bytes and a resume callback
 * without the wrapper objects of the newer controller API, which matters on
 * every request. A fallback wraps it (fallback.ts) rather than living in it.
 */
export class Exchange implements GatedHandler {
  gate: Gate | null = null
  private abort: ((err?: Error) => void) | null = null
  private status = 0
  /** Answered in full at its head (204, 304): what undici reports after it changes nothing. */
  private answered = false

  constructor (
    private readonly res: ServerResponse,
    private readonly observer: ForwardObserver,
    /** The `context` metrics label. */
    private readonly label: string,
    /** The side whose answer the client gets: a fallback sets it to legacy when it sends the request there instead. */
    public side: Side,
    /** Observes the answer for a shadow comparison; null for almost every request. */
    private readonly capture: Capture | null,
    /** How the answering side's Location and Set-Cookie map back; a fallback sets legacy's. */
    public answers: Answers | null,
    private readonly started = performance.now()
  ) {
    // A response closes once: on() spares once()'s wrapper and its removal.
    res.on('close', () => {
      if (!res.writableFinished && this.abort !== null) this.abort()
    })
  }

  /** Nothing of an answer has reached the client, who is still there: the request may still go elsewhere. */
  get restartable (): boolean {
    return !this.res.headersSent && !this.res.destroyed
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

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true
    this.status = statusCode
    this.capture?.head(statusCode, rawHeaders)
    this.res.writeHead(statusCode, statusText, clientResponseHeaders(rawHeaders, this.answers))
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
    this.capture?.data(chunk)
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
    this.capture?.end()
    this.res.end()
    this.observer.response(this.label, this.side, this.status, (performance.now() - this.started) / 1000)
  }

  onError (err: Error): void {
    if (this.gate !== null) {
      this.gate.release()
      this.gate = null
    }
    const { res } = this
    if (this.answered) return
    this.capture?.fail(err)
    if (res.destroyed) return
    if ((err as NodeJS.ErrnoException).code === TOO_LARGE && !res.headersSent) {
      this.observer.rejectedRequest('body_too_large')
      res.shouldKeepAlive = false
      sendError(res, errors.BODY_TOO_LARGE)
      return
    }
    const { reason, error } = classify(err as NodeJS.ErrnoException)
    this.observer.upstreamError(this.label, this.side, reason)
    if (res.headersSent) {
      // A short body must never look complete: abort the client connection.
      res.destroy(err)
      this.observer.response(this.label, this.side, this.status, (performance.now() - this.started) / 1000)
      return
    }
    sendError(res, error)
    this.observer.response(this.label, this.side, error.status, (performance.now() - this.started) / 1000)
  }
}

/** Hands one upstream request to its upstream's gate; `handler` gets the answer. */
export function send (pools: UpstreamPools, target: Target, method: string, body: Buffer | Readable | null, handler: GatedHandler): void {
  const { upstream } = target
  pools.get(upstream).dispatch({
    origin: upstream.origin,
    path: target.path,
    method: method as Dispatcher.HttpMethod,
    headers: target.headers,
    body,
    headersTimeout: upstream.timeoutMs,
    bodyTimeout: upstream.bodyTimeoutMs
  }, handler)
}
