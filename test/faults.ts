/**
 * Tools for the fault tests: upstreams that misbehave at the byte level, a raw
 * client that keeps every byte it receives, metric lookups and a bounded wait
 * for sockets to close.
 */
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import type { Strangler } from '../src/main.ts'
import { admin } from './helpers.ts'

export interface RawUpstream {
  url: string
  port: number
  server: net.Server
  /** Connections accepted so far. */
  connections: number
  /** Request heads received so far, on all connections. */
  requests: number
  /** Resolves when the next request head arrives. */
  nextRequest: () => Promise<string>
}

/**
 * A TCP server that speaks just enough HTTP to find request heads, then lets
 * `onRequest` write whatever bytes (or misbehaviour) the test wants. `nth`
 * counts the requests on one connection from 0. Bodies are read and ignored.
 */
export async function rawUpstream (t: Test, onRequest: (socket: net.Socket, head: string, nth: number) => void, onConnection: (socket: net.Socket) => boolean = () => true): Promise<RawUpstream> {
  const sockets = new Set<net.Socket>()
  let waiters: Array<(head: string) => void> = []
  const server = net.createServer(socket => {
    u.connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    if (!onConnection(socket)) return
    let buffered = ''
    let nth = 0
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1')
      let end: number
      while ((end = buffered.indexOf('\r\n\r\n')) !== -1) {
        const head = buffered.slice(0, end)
        buffered = buffered.slice(end + 4)
        u.requests++
        const w = waiters
        waiters = []
        for (const resolve of w) resolve(head)
        onRequest(socket, head, nth++)
      }
      // what is left is a body, or the start of the next head
      if (buffered.length > 65536) buffered = buffered.slice(-4)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  t.teardown(() => new Promise<void>(resolve => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  const u: RawUpstream = {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    connections: 0,
    requests: 0,
    nextRequest: () => new Promise(resolve => waiters.push(resolve))
  }
  return u
}

export interface RawExchange {
  /** Every byte received until the connection closed. */
  bytes: Buffer
  /** How the connection ended: 'end' (FIN) or the error code (ECONNRESET…). */
  ended: string
}

/** Writes `request` (a string is sent one byte per char) on a fresh TCP connection and collects the answer until the connection closes. */
export function rawRequest (port: number, request: string | Buffer): Promise<RawExchange> {
  return new Promise(resolve => {
    const chunks: Buffer[] = []
    let ended = 'close'
    const socket = net.connect(port, '127.0.0.1', () => socket.write(typeof request === 'string' ? Buffer.from(request, 'latin1') : request))
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => { ended = 'end' })
    socket.on('error', (err: NodeJS.ErrnoException) => { ended = err.code ?? err.message })
    socket.on('close', () => resolve({ bytes: Buffer.concat(chunks), ended }))
  })
}

export interface Framing {
  status: number
  headers: Record<string, string[]>
  /** True when the bytes received hold the whole body its framing announced. */
  complete: boolean
  framing: 'content-length' | 'chunked' | 'close-delimited'
  bodyBytes: number
}

/** Reads one HTTP/1.1 response head off `bytes` and says whether the body its framing promises arrived whole. */
export function framingOf (bytes: Buffer): Framing {
  const text = bytes.toString('latin1')
  const end = text.indexOf('\r\n\r\n')
  if (end === -1) throw new Error(`no complete response head in ${JSON.stringify(text.slice(0, 200))}`)
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n')
  const headers: Record<string, string[]> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    const name = line.slice(0, colon).trim().toLowerCase()
    ;(headers[name] ??= []).push(line.slice(colon + 1).trim())
  }
  const body = bytes.subarray(end + 4)
  const status = Number(statusLine.split(' ')[1])
  if (headers['transfer-encoding']?.some(v => /chunked/i.test(v)) === true) {
    return { status, headers, framing: 'chunked', complete: chunkedComplete(body), bodyBytes: body.length }
  }
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length'][0])
    return { status, headers, framing: 'content-length', complete: body.length >= length, bodyBytes: body.length }
  }
  // a close-delimited body is "complete" whenever the connection closes: indistinguishable from a short one
  return { status, headers, framing: 'close-delimited', complete: true, bodyBytes: body.length }
}

function chunkedComplete (body: Buffer): boolean {
  let at = 0
  for (;;) {
    const eol = body.indexOf('\r\n', at)
    if (eol === -1) return false
    const size = parseInt(body.subarray(at, eol).toString('latin1').split(';')[0], 16)
    if (Number.isNaN(size)) return false
    // the last chunk, then trailers up to an empty line
    if (size === 0) return body.indexOf('\r\n\r\n', eol) !== -1
    at = eol + 2 + size + 2
    if (at > body.length) return false
  }
}

/**
 * What a Node http client observes: 'complete' (the response ended normally),
 * 'aborted', or an error code. A short body must never be 'complete'.
 */
export function clientOutcome (url: string): Promise<{ outcome: string; status: number; bytes: number }> {
  return new Promise(resolve => {
    let status = 0
    let bytes = 0
    let done = false
    const finish = (outcome: string): void => {
      if (done) return
      done = true
      resolve({ outcome, status, bytes })
    }
    http.get(url, { agent: false }, res => {
      status = res.statusCode as number
      res.on('data', (c: Buffer) => { bytes += c.length })
      res.on('end', () => finish('complete'))
      res.on('aborted', () => finish('aborted'))
      res.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message))
      res.on('close', () => finish(res.complete ? 'complete' : 'aborted'))
    }).on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message))
  })
}

/** Every sample of `name` on the admin port, as `{labels}` → value (labels in the order exported). */
export async function metricSamples (p: Strangler, name: string): Promise<Map<string, number>> {
  const r = await admin(p, 'GET', '/metrics')
  const out = new Map<string, number>()
  for (const line of r.text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const space = line.lastIndexOf(' ')
    out.set(line.slice(name.length, space), Number(line.slice(space + 1)))
  }
  return out
}

/** strangler_upstream_errors_total by reason, for one context and side; reasons never counted are absent. */
export async function upstreamErrors (p: Strangler, context: string, side: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const [labels, value] of await metricSamples(p, 'strangler_upstream_errors_total')) {
    const m = /context="([^"]*)",side="([^"]*)",reason="([^"]*)"/.exec(labels)
    if (m !== null && m[1] === context && m[2] === side && value > 0) out[m[3]] = value
  }
  return out
}

export function connectionsOf (server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, n) => err !== null && err !== undefined ? reject(err) : resolve(n)))
}

export function tcpSocketHandles (): number {
  return process.getActiveResourcesInfo().filter(r => r === 'TCPSocketWrap').length
}

/**
 * Lets the event loop turn (each turn polls for I/O, so closes and FINs from the
 * kernel are seen) until `done()` holds, at most `turns` times. No timers: the
 * bound is a count of loop turns. Returns whether `done()` held.
 */
export async function settle (done: () => boolean | Promise<boolean>, turns = 20_000): Promise<boolean> {
  for (let i = 0; i < turns; i++) {
    if (await done()) return true
    await new Promise<void>(resolve => setImmediate(resolve))
  }
  return await done()
}

/** The generic error bodies of README's error table, byte for byte. */
export const BODY_502 = '{"statusCode":502,"status":502,"code":"STRANGLER_UPSTREAM_UNAVAILABLE","message":"The service behind this proxy did not answer."}'
export const BODY_504 = '{"statusCode":504,"status":504,"code":"STRANGLER_UPSTREAM_TIMEOUT","message":"The service behind this proxy did not answer in time."}'
