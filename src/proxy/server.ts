import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { errors } from '../errors.ts'
import type { ProxyDeps, RejectReason } from './deps.ts'
import { wait, type Pipeline } from './pipeline.ts'
import { requestHandlers } from './request.ts'
import { rejectUpgrade } from './upgrade.ts'

/** What the proxy listener hands over: requests (pipelining kept in order), upgrades, CONNECT, and parse errors. */
export interface ProxyHandlers {
  request (req: IncomingMessage, res: ServerResponse): void
  upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void
  connect (req: IncomingMessage, socket: Duplex): void
  clientError (err: NodeJS.ErrnoException, socket: Duplex): void
  /** Open WebSocket tunnels: closed by a drain. */
  readonly tunnels: Set<Duplex>
}

/**
 * The proxy's handlers, whatever listener they are given to (src/proxy/listener.ts):
 * the listener's own http.Server in `strangler serve`, or a user's Fastify app.
 * Each request goes through request.ts's stages once Node has given its
 * response the socket.
 */
export function createProxyHandlers (deps: ProxyDeps): ProxyHandlers {
  const { observer } = deps

  /** Sockets whose current response closes them: requests pipelined behind it are never processed. */
  const closing = new WeakSet<Duplex>()
  const proxy = requestHandlers(deps, closing)
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
    if (!res.shouldKeepAlive || deps.draining()) {
      res.shouldKeepAlive = false
      closing.add(req.socket)
    }
    proxy.request(req, res)
  }

  // Without a listener Node drops a CONNECT without an answer; a proxy for origin servers refuses it, as nginx does.
  function connect (_req: IncomingMessage, socket: Duplex): void {
    socket.on('error', () => socket.destroy())
    observer.rejectedRequest('bad_request')
    rejectUpgrade(socket, errors.BAD_REQUEST)
  }

  function clientError (err: NodeJS.ErrnoException, socket: Duplex): void {
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

  return { request: onRequest, upgrade: proxy.upgrade, connect, clientError, tunnels: proxy.tunnels }
}
