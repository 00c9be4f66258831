import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

/**
 * Requests a client pipelined behind one still being answered. Node parses
 * them as they arrive and queues their responses, but calls the request
 * handler at once: left alone, they would all be forwarded in parallel, which
 * RFC 9112 §9.3.2 allows only for safe methods. Each waits instead until Node
 * gives its response the socket, that is until the one before it has finished.
 */
export interface Pipeline {
  waiting: number
  /** The response of the request that arrived last; the answer to a parse error goes after it. */
  last: ServerResponse
  /** Reading is stopped because too many requests are waiting. */
  paused: boolean
  installed: boolean
}

/**
 * Requests parsed and waiting on one connection before the proxy stops reading
 * it. What Node has already read is still parsed, so a connection holds at most
 * this many plus one read (64 KiB) of request heads; the rest waits in the
 * kernel, and TCP flow control slows the client, as behind nginx.
 */
export const MAX_WAITING = 16

/**
 * Node's `_paused` is its own flag for a socket it stopped reading under write
 * pressure: while it is set, Node pauses the parser after each read and pauses
 * the socket again whenever something resumes it. Node clears it as soon as any
 * response is written, so here it also reads true while this pipeline holds
 * the connection.
 */
type HttpSocket = Duplex & { _paused?: boolean; parser?: { resume (): void } | null }

function hold (s: HttpSocket, p: Pipeline): void {
  if (!p.installed) {
    p.installed = true
    let node = s._paused === true
    Object.defineProperty(s, '_paused', { configurable: true, enumerable: true, get: () => node || p.paused, set: (v: boolean) => { node = v } })
  }
  p.paused = true
  s.pause()
}

function release (s: HttpSocket, p: Pipeline): void {
  p.paused = false
  // Still paused by Node itself: it resumes when the client has read what was written.
  if (s._paused === true) return
  s.parser?.resume()
  s.resume()
}

export function wait (pipelines: WeakMap<Duplex, Pipeline>, socket: Duplex, req: IncomingMessage, res: ServerResponse, handle: (req: IncomingMessage, res: ServerResponse) => void): void {
  let p = pipelines.get(socket)
  if (p === undefined) {
    p = { waiting: 0, last: res, paused: false, installed: false }
    pipelines.set(socket, p)
  }
  p.waiting++
  p.last = res
  const s = socket as HttpSocket
  if (p.waiting >= MAX_WAITING && !p.paused) hold(s, p)
  const pipeline = p
  res.once('socket', () => {
    pipeline.waiting--
    if (pipeline.paused && pipeline.waiting <= MAX_WAITING / 2) release(s, pipeline)
    // The connection failed or was answered 400 meanwhile: nothing more goes out on it.
    if (s.writable) handle(req, res)
  })
}
