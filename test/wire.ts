/**
 * A raw HTTP/1.1 client for wire-level comparisons: writes exact bytes, parses
 * the responses just enough to know where each ends (1xx, HEAD, 204/304,
 * Content-Length, chunked, or the close), and writes each as a normalised line
 * of text so two proxies' answers compare with a plain equality.
 */
import net from 'node:net'
import type { UpstreamRequest } from './raw-upstream.ts'

export interface Talk {
  /** Each response as `normalised` renders it, interim ones included. */
  responses: string[]
  /** True when the connection answered a request sent after the expected responses. */
  open: boolean
}

export interface TalkOptions {
  /** Final (non-1xx) responses to read before probing the connection. */
  finals: number
  /** Methods of the requests sent, in order (HEAD answers have no body). */
  methods: string[]
  /** Sent after the first response (a 101's tunnel data), then the client half-closes. */
  after?: string
  /** Request sent to find out whether the connection is still usable. */
  probe: string
}

/** Response fields that differ by product or connection policy, not by behaviour; the probe measures the policy. */
const NOISE = new Set(['date', 'server', 'connection', 'keep-alive'])

interface Parsed { text: string; final: boolean; used: number }

/**
 * An error answer the proxy wrote itself (nginx's HTML page, strangler-proxy's
 * JSON body, or Node's empty 400/408/431) becomes its status line and a
 * marker: the pages differ by product, the status is what is compared.
 */
function ownPage (text: string): string {
  const status = text.slice(0, text.indexOf(' |'))
  if (!/^HTTP\/1\.[01] [45]\d\d/.test(status)) return text
  if (text.includes('<hr><center>nginx/') || text.includes('STRANGLER_') || text.endsWith(' | content-length: 0 || length ""')) return `${status} | (own error page)`
  return text
}

function fields (lines: string[]): string[] {
  // Names are case-insensitive and the order of differently named fields carries no meaning (RFC 9110 §5.1, §5.3).
  return lines
    .map(l => `${l.slice(0, l.indexOf(':')).toLowerCase()}: ${l.slice(l.indexOf(':') + 1).trim()}`)
    .filter(l => !NOISE.has(l.slice(0, l.indexOf(':'))))
    .sort((a, b) => a.slice(0, a.indexOf(':')).localeCompare(b.slice(0, b.indexOf(':'))))
}

/** One response at the start of `buf`; null while more bytes may come. */
function parseResponse (buf: Buffer, method: string, closed: boolean): Parsed | null {
  const end = buf.indexOf('\r\n\r\n')
  if (end === -1) return closed && buf.length > 0 ? { text: `(garbage) ${JSON.stringify(buf.toString('latin1'))}`, final: true, used: buf.length } : null
  const [line, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n')
  const head = `${line} | ${fields(lines).join(' | ')}`
  const status = Number(line.split(' ')[1])
  const value = (name: string): string | undefined => lines.find(l => l.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim()
  const at = end + 4
  if (status < 200 && status !== 101) return { text: head, final: false, used: at }
  if (method === 'HEAD' || status === 204 || status === 304 || status === 101) return { text: `${head} ||`, final: true, used: at }
  if (/chunked/i.test(value('transfer-encoding') ?? '')) {
    let p = at
    let body = ''
    for (;;) {
      const eol = buf.indexOf('\r\n', p)
      if (eol === -1) return closed ? { text: `${head} || chunked ${JSON.stringify(body)} (cut short)`, final: true, used: buf.length } : null
      const size = parseInt(buf.subarray(p, eol).toString('latin1'), 16)
      if (size === 0) {
        const last = buf.indexOf('\r\n\r\n', eol)
        if (last === -1) return closed ? { text: `${head} || chunked ${JSON.stringify(body)} (cut short)`, final: true, used: buf.length } : null
        const trailers = buf.subarray(eol + 2, last + 2).toString('latin1')
        return { text: `${head} || chunked ${JSON.stringify(body)}${trailers === '\r\n' || trailers === '' ? '' : ` trailers ${JSON.stringify(trailers.trim())}`}`, final: true, used: last + 4 }
      }
      if (buf.length < eol + 2 + size + 2) return closed ? { text: `${head} || chunked ${JSON.stringify(body + buf.subarray(eol + 2).toString('latin1'))} (cut short)`, final: true, used: buf.length } : null
      body += buf.subarray(eol + 2, eol + 2 + size).toString('latin1')
      p = eol + 2 + size + 2
    }
  }
  const length = value('content-length')
  if (length !== undefined) {
    const n = Number(length)
    if (buf.length < at + n) return closed ? { text: `${head} || length ${JSON.stringify(buf.subarray(at).toString('latin1'))} (cut short)`, final: true, used: buf.length } : null
    return { text: `${head} || length ${JSON.stringify(buf.subarray(at, at + n).toString('latin1'))}`, final: true, used: at + n }
  }
  return closed ? { text: `${head} || close ${JSON.stringify(buf.subarray(at).toString('latin1'))}`, final: true, used: buf.length } : null
}

/**
 * Sends `request` on a fresh connection and reads `finals` responses (or until
 * the connection closes), then sends the probe: an answer to it means the
 * connection was left open and usable.
 */
export function talk (port: number, request: string, o: TalkOptions): Promise<Talk> {
  return new Promise(resolve => {
    const socket = net.connect(port, '127.0.0.1')
    let buf = Buffer.alloc(0)
    const responses: string[] = []
    let finals = 0
    let probing = false
    let afterSent = false
    let closed = false
    const pump = (): void => {
      for (;;) {
        if (probing || afterSent) return
        const parsed = parseResponse(buf, o.methods[Math.min(finals, o.methods.length - 1)], closed)
        if (parsed === null) return
        responses.push(ownPage(parsed.text))
        buf = buf.subarray(parsed.used)
        if (!parsed.final) continue
        finals++
        if (o.after !== undefined && !afterSent) {
          afterSent = true
          socket.end(o.after)
          return
        }
        if (finals === o.finals && !closed) {
          probing = true
          socket.write(o.probe)
          return
        }
        if (buf.length === 0) return
      }
    }
    // Only a failure hits this bound: every case ends with a close its own bytes cause.
    const stall = setTimeout(() => {
      responses.push('(stalled)')
      socket.destroy()
    }, 2000)
    socket.on('connect', () => socket.write(Buffer.from(request, 'latin1')))
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c])
      pump()
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(stall)
      closed = true
      pump()
      if (afterSent && buf.length > 0) responses.push(`(tunnel) ${JSON.stringify(buf.toString('latin1'))}`)
      resolve({ responses, open: probing && buf.length > 0 })
    })
  })
}

/**
 * A request as the upstream received it, normalised like responses; the proxy's
 * connection policy and its X-Request-Id (nginx sends none; test/e2e/request-id.test.ts) are left out.
 */
export function received (r: UpstreamRequest): string {
  const lines = r.headers.map(([n, v]) => `${n}: ${v}`).filter(l => !l.toLowerCase().startsWith('connection:') && !l.toLowerCase().startsWith('x-request-id:'))
  const trailers = r.trailers.length === 0 ? '' : ` trailers ${r.trailers.map(([n, v]) => `${n}: ${v}`).join(' | ')}`
  return `${r.line} | ${fields(lines).join(' | ')} || ${JSON.stringify(r.body.toString('latin1'))}${trailers}`
}
