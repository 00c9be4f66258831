import type { IncomingMessage } from 'node:http'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import { errorBody, type ErrorDef } from '../errors.ts'
import { classify, type ForwardObserver } from './forward.ts'
import { clientResponseHeaders } from './headers.ts'
import type { Target } from './plan.ts'

function rawError (socket: Duplex, e: ErrorDef): void {
  const body = errorBody(e)
  // Reads (and drops) what the client still sends: a paused socket never sees the client's FIN, never closes.
  socket.resume()
  socket.end(`HTTP/1.1 ${e.status} ${e.status === 504 ? 'Gateway Timeout' : e.status === 400 ? 'Bad Request' : 'Bad Gateway'}\r\n` +
    `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}

export { rawError as rejectUpgrade }

/** A status line and header fields as they go to the client. */
function head (status: string, raw: readonly string[], extra: string): string {
  let text = `HTTP/1.1 ${status}\r\n`
  for (let i = 0; i < raw.length; i += 2) text += `${raw[i]}: ${raw[i + 1]}\r\n`
  return `${text}${extra}\r\n`
}

/**
 * Proxies an HTTP Upgrade (WebSocket): the upgrade request goes to the upstream
 * with the same headers an HTTP request would carry, and only once the upstream
 * answers 101 do bytes flow both ways untouched. Any other answer is relayed as
 * an ordinary response that closes the connection: what the client sends after
 * it never reaches the upstream unrouted. The side is chosen once, when the
 * connection opens; a later rollback does not move an open connection.
 */
export function tunnel (req: IncomingMessage, client: Duplex, early: Buffer, t: Target, label: string, observer: ForwardObserver, open: Set<Duplex>): void {
  const url = new URL(t.upstream.origin)
  const tls = url.protocol === 'https:'
  const up = (tls ? https : http).request({
    host: url.hostname,
    port: Number(url.port) || (tls ? 443 : 80),
    servername: tls && net.isIP(url.hostname) === 0 ? url.hostname : undefined,
    method: req.method ?? 'GET',
    path: t.path,
    headers: [...t.headers, 'connection', 'upgrade', 'upgrade', String(req.headers.upgrade)],
    agent: false,
    timeout: t.upstream.timeoutMs
  })
  let answered = false
  open.add(client)
  client.once('close', () => {
    open.delete(client)
    up.destroy()
  })
  client.on('error', () => up.destroy())
  up.on('timeout', () => up.destroy(Object.assign(new Error('upstream timeout'), { code: 'ETIMEDOUT' })))
  up.on('upgrade', (res, socket, rest) => {
    answered = true
    socket.setTimeout(0)
    client.write(head(`101 ${res.statusMessage ?? 'Switching Protocols'}`, res.rawHeaders, ''))
    if (rest.length > 0) client.write(rest)
    if (early.length > 0) socket.write(early)
    socket.on('error', () => client.destroy())
    socket.once('close', () => client.destroy())
    socket.pipe(client)
    client.pipe(socket)
  })
  up.on('response', res => {
    answered = true
    // The body as Node decoded it, ending with the connection when no Content-Length framed it.
    client.write(head(`${res.statusCode ?? 502} ${res.statusMessage ?? ''}`, clientResponseHeaders(res.rawHeaders, t.answers), 'connection: close\r\n'))
    client.resume()
    res.on('data', (c: Buffer) => client.write(c))
    res.once('end', () => client.end())
    res.once('error', () => client.destroy())
  })
  up.on('error', (err: NodeJS.ErrnoException) => {
    const { reason, error } = classify(err)
    observer.upstreamError(label, t.side, reason)
    if (answered) client.destroy()
    else rawError(client, error)
  })
  up.end()
}
