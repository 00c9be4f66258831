import type { IncomingMessage } from 'node:http'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import tls from 'node:tls'
import { errorBody, type ErrorDef } from '../errors.ts'
import type { Upstream } from '../types.ts'
import { classify, type ForwardObserver } from './forward.ts'
import type { Side } from '../types.ts'

export interface Tunnel {
  upstream: Upstream
  path: string
  /** Request headers for the upstream, hop-by-hop ones already removed. */
  headers: string[]
  context: string
  side: Side
}

function rawError (socket: Duplex, e: ErrorDef): void {
  const body = errorBody(e)
  // Reads (and drops) what the client still sends: a paused socket never sees the client's FIN, never closes.
  socket.resume()
  socket.end(`HTTP/1.1 ${e.status} ${e.status === 504 ? 'Gateway Timeout' : e.status === 400 ? 'Bad Request' : 'Bad Gateway'}\r\n` +
    `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}

export { rawError as rejectUpgrade }

/**
 * Proxies an HTTP Upgrade (WebSocket) as a byte tunnel: the upgrade request is
 * written to the upstream with the same headers an HTTP request would carry, and
 * from then on bytes flow both ways untouched. The side is chosen once, when the
 * connection opens; a later rollback does not move an open connection.
 */
export function tunnel (req: IncomingMessage, client: Duplex, head: Buffer, t: Tunnel, observer: ForwardObserver, open: Set<Duplex>): void {
  const url = new URL(t.upstream.origin)
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80)
  const upstream = url.protocol === 'https:'
    ? tls.connect({ host: url.hostname, port, servername: net.isIP(url.hostname) === 0 ? url.hostname : undefined })
    : net.connect({ host: url.hostname, port })
  let answered = false
  upstream.setTimeout(t.upstream.timeoutMs, () => upstream.destroy(Object.assign(new Error('upstream timeout'), { code: 'ETIMEDOUT' })))
  upstream.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
    let text = `${req.method ?? 'GET'} ${t.path} HTTP/1.1\r\n`
    for (let i = 0; i < t.headers.length; i += 2) text += `${t.headers[i]}: ${t.headers[i + 1]}\r\n`
    text += `connection: upgrade\r\nupgrade: ${String(req.headers.upgrade)}\r\n\r\n`
    upstream.write(text)
    if (head.length > 0) upstream.write(head)
    client.pipe(upstream)
  })
  upstream.once('data', () => {
    answered = true
    upstream.setTimeout(0)
  })
  upstream.pipe(client)
  open.add(client)
  client.once('close', () => {
    open.delete(client)
    upstream.destroy()
  })
  client.on('error', () => upstream.destroy())
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    const { reason, error } = classify(err)
    observer.upstreamError(t.context, t.side, reason)
    if (answered) client.destroy()
    else {
      upstream.unpipe(client)
      rawError(client, error)
    }
  })
}
