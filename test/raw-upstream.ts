/**
 * A byte-logging upstream for wire-level tests: a plain TCP server that keeps
 * the exact bytes of every request it receives (no HTTP library between the
 * wire and the record) and answers each with the bytes a test scripts.
 */
import net, { type AddressInfo } from 'node:net'
import type { Test } from 'tap'

export interface UpstreamRequest {
  /** The request's exact bytes: head, then the body as framed on the wire. */
  raw: Buffer
  /** Request line, as received. */
  line: string
  /** Header fields in the order received, names as spelled. */
  headers: Array<[string, string]>
  /** The body, with chunked framing removed. */
  body: Buffer
  /** Trailer fields of a chunked body. */
  trailers: Array<[string, string]>
  /** Which accepted connection it came on (0, 1, …). */
  connection: number
}

/** Bytes to answer with; a function gets the socket to misbehave as it likes. */
export type Reply = string | Buffer | ((socket: net.Socket) => void)

export interface ScriptedUpstream {
  port: number
  url: string
  requests: UpstreamRequest[]
  /** Connections accepted so far. */
  connections: number
  /** Answers each request; `nth` counts the requests on its connection from 0. Replaceable between cases. */
  reply: (req: UpstreamRequest, nth: number) => Reply
}

function headerList (lines: string[]): Array<[string, string]> {
  return lines.map(line => {
    const colon = line.indexOf(':')
    return [line.slice(0, colon), line.slice(colon + 1).trim()]
  })
}

/** One complete request at the start of `buf`, or null while bytes are missing. */
function parseRequest (buf: Buffer, connection: number): { req: UpstreamRequest; used: number } | null {
  const end = buf.indexOf('\r\n\r\n')
  if (end === -1) return null
  const [line, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n')
  const headers = headerList(lines)
  const value = (name: string): string | undefined => headers.find(([n]) => n.toLowerCase() === name)?.[1]
  let at = end + 4
  let body: Buffer = Buffer.alloc(0)
  let trailers: Array<[string, string]> = []
  if (/chunked/i.test(value('transfer-encoding') ?? '')) {
    const parts: Buffer[] = []
    for (;;) {
      const eol = buf.indexOf('\r\n', at)
      if (eol === -1) return null
      const size = parseInt(buf.subarray(at, eol).toString('latin1'), 16)
      if (size === 0) {
        const last = buf.indexOf('\r\n\r\n', eol)
        const empty = buf.subarray(eol, eol + 4).toString('latin1') === '\r\n\r\n'
        if (last === -1) return null
        trailers = empty ? [] : headerList(buf.subarray(eol + 2, last).toString('latin1').split('\r\n'))
        at = last + 4
        break
      }
      if (buf.length < eol + 2 + size + 2) return null
      parts.push(buf.subarray(eol + 2, eol + 2 + size))
      at = eol + 2 + size + 2
    }
    body = Buffer.concat(parts)
  } else if (value('content-length') !== undefined) {
    const length = Number(value('content-length'))
    if (buf.length < at + length) return null
    body = buf.subarray(at, at + length)
    at += length
  }
  return { req: { raw: Buffer.from(buf.subarray(0, at)), line, headers, body: Buffer.from(body), trailers, connection }, used: at }
}

/**
 * Starts the upstream on 127.0.0.1:0. After an answer that starts with
 * `HTTP/1.1 101`, the connection becomes an echo: every byte comes back.
 */
export async function scriptedUpstream (t: Test, reply: ScriptedUpstream['reply']): Promise<ScriptedUpstream> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer(socket => {
    const connection = u.connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buffered = Buffer.alloc(0)
    let nth = 0
    let echo = false
    socket.on('data', (chunk: Buffer) => {
      if (echo) {
        socket.write(chunk)
        return
      }
      buffered = Buffer.concat([buffered, chunk])
      let parsed
      while (!echo && (parsed = parseRequest(buffered, connection)) !== null) {
        buffered = buffered.subarray(parsed.used)
        u.requests.push(parsed.req)
        const answer = u.reply(parsed.req, nth++)
        if (typeof answer === 'function') answer(socket)
        else {
          const bytes = typeof answer === 'string' ? Buffer.from(answer, 'latin1') : answer
          socket.write(bytes)
          echo = bytes.subarray(0, 12).toString('latin1') === 'HTTP/1.1 101'
          if (echo && buffered.length > 0) socket.write(buffered)
        }
      }
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  t.teardown(() => new Promise<void>(resolve => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  const u: ScriptedUpstream = { port, url: `http://127.0.0.1:${port}`, requests: [], connections: 0, reply }
  return u
}

/** `200 OK` with `body` and a Content-Length: the ordinary answer. */
export function ok (body = 'ok', extra = ''): string {
  return `HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`
}
