import type { IncomingMessage, ServerResponse } from 'node:http'
import type { BlockList } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { errors } from '../errors.ts'
import { decide, type EffectiveWeight, type Preview } from '../routing/decide.ts'
import type { RoutingTable } from '../routing/table.ts'
import { forward, forwardHeld, sendError, type ForwardObserver, type Target } from './forward.ts'
import { forwardPath } from '../routing/rewrite.ts'
import { isTrusted, requestIdOf, upstreamRequestHeaders } from './headers.ts'
import { logAccess } from './access-log.ts'
import { untraced, type RequestTrace, type Tracing } from './tracing.ts'
import { wait, type Pipeline } from './pipeline.ts'
import { rejectUpgrade, tunnel } from './upgrade.ts'
import type { UpstreamPools } from './upstreams.ts'
import type { Side, Upstream } from '../types.ts'
import type { ShadowObserver, Shadows } from '../shadow/shadows.ts'
import type { PreviewResult } from '../routing/preview.ts'

/** HTTP/1.1 needs exactly one Host (RFC 9112 §3.2); HTTP/1.0 at most one. */
function hasOneHost (req: IncomingMessage): boolean {
  const raw = req.rawHeaders
  let hosts = 0
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 4 && raw[i].toLowerCase() === 'host') hosts++
  }
  return hosts === 1 || (hosts === 0 && req.httpVersionMinor === 0)
}

const ABSOLUTE_FORM = /^https?:\/\/([^/?#@\s]+)([/?][^#]*)?$/i

/**
 * An absolute-form request target (`GET http://shop.example.com/api HTTP/1.1`)
 * made origin-form, as RFC 9112 §3.2.2 has a server do: the target's authority
 * replaces the Host header, and its path and query are what is routed and
 * forwarded. Any other target that does not start with `/` is left as it is,
 * and routing refuses it (400).
 */
function toOriginForm (req: IncomingMessage): void {
  const m = ABSOLUTE_FORM.exec(req.url as string)
  if (m === null) return
  const authority = m[1]
  const rest = m[2] ?? '/'
  req.url = rest.charCodeAt(0) === 63 ? `/${rest}` : rest
  const raw = req.rawHeaders
  let found = false
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 4 && raw[i].toLowerCase() === 'host') {
      raw[i + 1] = authority
      found = true
    }
  }
  if (!found) raw.push('Host', authority)
  req.headers.host = authority
}

/** What the proxy reads once per request. Replaced whole on reload, never mutated. */
export interface Snapshot {
  table: RoutingTable
  trust: BlockList | null
  accessLog: boolean
  accessLogQuery: boolean
  /** 0: no limit. */
  maxBodyBytes: number
  /** server.underscoreHeaders is drop. */
  dropUnderscores: boolean
}

export const REJECT_REASONS = ['bad_path', 'body_too_large', 'headers_too_large', 'timeout', 'bad_request'] as const
export type RejectReason = typeof REJECT_REASONS[number]

export interface ProxyObserver extends ForwardObserver, ShadowObserver {
  previewResult (context: string, result: PreviewResult): void
  rejectedRequest (reason: RejectReason): void
}

export const noopObserver: ProxyObserver = {
  response () {},
  upstreamError () {},
  rejectedRequest () {},
  shadowResult () {},
  previewResult () {},
  fallback () {}
}

export interface ProxyDeps {
  /** Dark launch; null where shadowing is not wired (it is, wherever contexts can ask for it). */
  shadows: Shadows | null
  /** The current snapshot; read once when a request arrives. */
  snapshot: () => Snapshot
  weightOf: EffectiveWeight
  /** Preview tokens: a valid one picks the side. */
  preview: Preview
  pools: UpstreamPools
  observer: ProxyObserver
  log: Logger
  /** noTracing unless OpenTelemetry is configured. */
  tracing: Tracing
  /** True while shutting down: responses then close their connection. */
  draining: () => boolean
}

/** What the proxy listener hands over: requests (pipelining kept in order), upgrades, CONNECT, and parse errors. */
export interface ProxyHandlers {
  request (req: IncomingMessage, res: ServerResponse): void
  upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void
  connect (req: IncomingMessage, socket: Duplex): void
  clientError (err: NodeJS.ErrnoException, socket: Duplex): void
  /** Open WebSocket tunnels: closed by a drain. */
  tunnels: Set<Duplex>
}

/**
 * The proxy's handlers, whatever listener they are given to (src/proxy/listener.ts):
 * the listener's own http.Server in `strangler serve`, or a user's Fastify app.
 */
export function createProxyHandlers (deps: ProxyDeps): ProxyHandlers {
  const { pools, observer, log } = deps
  const tunnels = new Set<Duplex>()

  /** Sockets whose current response closes them: requests pipelined behind it are never processed. */
  const closing = new WeakSet<Duplex>()
  /** Connections with pipelined requests waiting: only those have an entry. */
  const pipelines = new WeakMap<Duplex, Pipeline>()

  function onRequest (req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket
    if (closing.has(socket)) return
    // Pipelined behind a response still in flight: Node hands this response the
    // socket once the one before it has finished, and only then is it forwarded.
    if (res.socket === null) {
      wait(pipelines, socket, req, res, handle)
      return
    }
    handle(req, res)
  }

  function handle (req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket
    if (!res.shouldKeepAlive || deps.draining()) {
      res.shouldKeepAlive = false
      closing.add(socket)
    }
    if (req.httpVersionMajor !== 1 || !hasOneHost(req)) {
      observer.rejectedRequest('bad_request')
      res.shouldKeepAlive = false
      closing.add(socket)
      sendError(res, errors.BAD_REQUEST)
      return
    }
    // Node reads `gzip, chunked` as chunked: the coding would be lost on the way. 400 like every other framing attack (nginx: 501).
    const te = req.headers['transfer-encoding']
    if (te !== undefined && te.toLowerCase() !== 'chunked') {
      observer.rejectedRequest('bad_request')
      res.shouldKeepAlive = false
      closing.add(socket)
      sendError(res, errors.BAD_REQUEST)
      return
    }
    if ((req.url as string).charCodeAt(0) !== 47) toOriginForm(req)
    const snap = deps.snapshot()
    const d = decide(snap.table, deps.weightOf, req.method as string, req.url as string, req.headers, deps.preview)
    if (d === null) {
      observer.rejectedRequest('bad_path')
      sendError(res, errors.BAD_PATH)
      return
    }
    const { upstream } = d
    if (snap.maxBodyBytes > 0 && Number(req.headers['content-length']) > snap.maxBodyBytes) {
      observer.rejectedRequest('body_too_large')
      res.shouldKeepAlive = false
      sendError(res, errors.BODY_TOO_LARGE)
      return
    }
    const trusted = isTrusted(snap.trust, req.socket.remoteAddress)
    const requestId = requestIdOf(req.headers['x-request-id'], trusted)
    const target = targetFor(upstream, d.path, d.label, d.side, req, trusted, snap, requestId, untraced)
    const trace = target.trace = deps.tracing.request(req, res, d, target, requestId)
    if (d.side === 'legacy' && d.context?.context.shadow != null && deps.shadows !== null) {
      target.capture = deps.shadows.start(d.context, req, d.canonicalPath, d.query, (u: Upstream) => upstreamRequestHeaders(req.rawHeaders, u.host, req.socket.remoteAddress, trusted, u.preserveHost, snap.dropUnderscores, requestId), trace)
    }
    if (snap.accessLog) logAccess(log, req, res, d, target, requestId, snap.accessLogQuery)
    const fb = d.side === 'new' ? d.context?.context.fallback ?? null : null
    if (fb === null || d.context === null || !fb.methods.includes(req.method as string)) {
      forward(req, res, target, observer)
      return
    }
    const length = req.headers['content-length']
    const bodyless = req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')
    const held = !bodyless && req.headers['transfer-encoding'] === undefined && Number(length) <= fb.maxBodyBytes
    if (!bodyless && !held) {
      forward(req, res, target, observer)
      return
    }
    const legacy = d.context.legacy
    target.fallback = targetFor(legacy, forwardPath(legacy, d.context.rewrite.legacy, d.canonicalPath, d.query), d.label, 'legacy', req, trusted, snap, requestId, trace)
    target.fallbackOn5xx = fb.on5xx
    if (held) forwardHeld(req, res, target, observer)
    else forward(req, res, target, observer)
  }

  function targetFor (upstream: Upstream, path: string, label: string, side: Side, req: IncomingMessage, trusted: boolean, snap: Snapshot, requestId: string, trace: RequestTrace): Target {
    return {
      gate: pools.get(upstream),
      origin: upstream.origin,
      path,
      capture: null,
      fallback: null,
      fallbackOn5xx: false,
      fellBack: null,
      headers: upstreamRequestHeaders(req.rawHeaders, upstream.host, req.socket.remoteAddress, trusted, upstream.preserveHost, snap.dropUnderscores, requestId),
      headersTimeout: upstream.timeoutMs,
      bodyTimeout: upstream.bodyTimeoutMs,
      maxBodyBytes: snap.maxBodyBytes,
      context: label,
      side,
      upstream: upstream.name,
      trace
    }
  }

  function onUpgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy())
    if ((req.url as string).charCodeAt(0) !== 47) toOriginForm(req)
    const snap = deps.snapshot()
    const d = decide(snap.table, deps.weightOf, req.method as string, req.url as string, req.headers, deps.preview)
    if (d === null) {
      observer.rejectedRequest('bad_path')
      rejectUpgrade(socket, errors.BAD_PATH)
      return
    }
    const { upstream } = d
    const trusted = isTrusted(snap.trust, req.socket.remoteAddress)
    tunnel(req, socket, head, {
      upstream,
      path: d.path,
      headers: upstreamRequestHeaders(req.rawHeaders, upstream.host, req.socket.remoteAddress, trusted, upstream.preserveHost, snap.dropUnderscores, requestIdOf(req.headers['x-request-id'], trusted)),
      context: d.label,
      side: d.side
    }, observer, tunnels)
  }

  // Without a listener Node drops a CONNECT without an answer; a proxy for origin servers refuses it, as nginx does.
  function onConnect (_req: IncomingMessage, socket: Duplex): void {
    socket.on('error', () => socket.destroy())
    observer.rejectedRequest('bad_request')
    rejectUpgrade(socket, errors.BAD_REQUEST)
  }

  function onClientError (err: NodeJS.ErrnoException, socket: Duplex): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    // Bytes after a response that closes the connection are never answered.
    const closed = closing.has(socket)
    closing.add(socket)
    const [status, reason]: [string, RejectReason] = err.code === 'HPE_HEADER_OVERFLOW'
      ? ['431 Request Header Fields Too Large', 'headers_too_large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? ['408 Request Timeout', 'timeout'] : ['400 Bad Request', 'bad_request']
    observer.rejectedRequest(reason)
    const answer = closed ? '' : `HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`
    // A response to an earlier, complete request on this connection is still on
    // its way: it goes first, then this answer, then the connection closes.
    const last = pipelines.get(socket)?.last
    const pending = last !== undefined && !last.writableFinished ? last : (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage
    if (pending != null && !pending.writableFinished && (pending.req.complete || closed)) {
      // Kept alive on purpose when there is an answer: Node would close the socket before it is written.
      if (answer === '') pending.shouldKeepAlive = false
      pending.once('finish', () => socket.end(answer))
      return
    }
    socket.end(answer)
  }

  return { request: onRequest, upgrade: onUpgrade, connect: onConnect, clientError: onClientError, tunnels }
}
