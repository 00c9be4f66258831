import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { pino, type Logger } from 'pino'
import type { Test } from 'tap'
import { Strangler, type StartOptions, startStrangler } from '../src/main.ts'

export interface Seen {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  body: string
}

export interface NamedUpstream {
  name: string
  url: string
  port: number
  server: http.Server
  seen: Seen[]
}

/**
 * A real HTTP upstream that answers `{ name, method, url }` as JSON and records
 * every request it receives. `handler`, when given, answers instead.
 */
export async function upstream (t: Test, name: string, handler?: http.RequestListener): Promise<NamedUpstream> {
  const seen: Seen[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      seen.push({ method: req.method as string, url: req.url as string, headers: req.headers, body: Buffer.concat(chunks).toString() })
      if (handler !== undefined) return handler(req, res)
      const body = JSON.stringify({ name, method: req.method, url: req.url })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-upstream': name })
      res.end(body)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => {
    server.close(() => resolve())
    server.closeAllConnections()
  }))
  const port = (server.address() as AddressInfo).port
  return { name, url: `http://127.0.0.1:${port}`, port, server, seen }
}

/** A port that nothing listens on (bound, then released). */
export async function deadPort (): Promise<number> {
  const s = http.createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>(resolve => s.close(() => resolve()))
  return port
}

/** A fresh temporary directory, removed when `t` ends (after the servers started in it, whose teardowns run first). */
export function tempDir (t: Test): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `strangler-${t.name.replace(/\W+/g, '-').slice(0, 40)}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Writes `yaml` to routes.yaml in a fresh temporary directory and returns its path. */
export function configFile (t: Test, yaml: string): string {
  const file = path.join(tempDir(t), 'routes.yaml')
  writeFileSync(file, yaml)
  return file
}

export const quietLog = pino({ level: 'silent' })

/** Starts the proxy on `yaml` (listening on an ephemeral port) and stops it at teardown. */
export async function proxy (t: Test, yaml: string, opts: Partial<StartOptions> = {}): Promise<Strangler & { base: string; file: string }> {
  const file = opts.configFile ?? configFile(t, yaml)
  const s = await startStrangler({ watch: false, log: quietLog, env: {}, ...opts, configFile: file })
  t.teardown(() => s.close())
  return Object.assign(s, { base: `http://127.0.0.1:${s.proxyPort}`, file })
}

/** One request over a fresh connection; resolves with status, headers and body. */
export function get (url: string, opts: http.RequestOptions & { body?: string | Buffer } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = opts.body === undefined ? opts.headers : { 'content-length': String(Buffer.byteLength(opts.body)), ...opts.headers }
    const req = http.request(url, { agent: false, ...opts, headers }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** The `name` an upstream answered with. */
export async function whoAnswers (url: string, opts: http.RequestOptions = {}): Promise<string> {
  const r = await get(url, opts)
  return (JSON.parse(r.body) as { name: string }).name
}

export interface Routes {
  legacy: string
  new: string
  weight: number
  extra?: string
  server?: string
  upstreamExtra?: string
}

/** A config with upstreams `monolith` and `orders-svc` and one context `orders` on /api/orders. */
export function routes (r: Routes): string {
  return `server:
  listen: 127.0.0.1:0
  admin: 127.0.0.1:0
${r.server ?? ''}
upstreams:
  monolith:
    url: ${r.legacy}
  orders-svc:
    url: ${r.new}
${r.upstreamExtra ?? ''}
default: monolith
contexts:
  orders:
    match:
      paths: [/api/orders]
    legacy: monolith
    new: orders-svc
    weight: ${r.weight}
${r.extra ?? ''}
`
}

/** Sends `n` GETs, `concurrency` at a time over keep-alive, and counts answers by upstream name. */
export async function tally (url: string | ((i: number) => string), n: number, headers: (i: number) => Record<string, string> = () => ({}), concurrency = 16): Promise<Record<string, number>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  const counts: Record<string, number> = {}
  let next = 0
  async function worker (): Promise<void> {
    while (next < n) {
      const i = next++
      const target = typeof url === 'string' ? url : url(i)
      const r = await get(target, { agent, headers: headers(i) })
      const name = r.status === 200 ? (JSON.parse(r.body) as { name: string }).name : `status ${r.status}`
      counts[name] = (counts[name] ?? 0) + 1
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  agent.destroy()
  return counts
}

/** A call to the admin API of `p`; the body is JSON when given. */
export async function admin (p: Strangler, method: string, route: string, opts: { token?: string; body?: unknown } = {}): Promise<{ status: number; json: any; text: string }> {
  const headers: Record<string, string> = {}
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  let body: string | undefined
  if (opts.body !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(opts.body)
  }
  const r = await get(`http://127.0.0.1:${p.adminPort}${route}`, { method, headers, body })
  let json: any = null
  try { json = JSON.parse(r.body) } catch {}
  return { status: r.status, json, text: r.body }
}

/** A pino logger that keeps every line it writes, parsed. */
export function recordingLog (): { log: Logger; lines: Array<Record<string, any>> } {
  const lines: Array<Record<string, any>> = []
  const log = pino({ level: 'info' }, { write (s: string) { lines.push(JSON.parse(s)) } })
  return { log, lines }
}

/**
 * Runs `strangler serve` on `file` as a real process (killed at teardown) and
 * returns it with `until(msg)`, which reads its JSON log lines up to the first
 * with that message.
 */
export function serveProcess (t: Test, file: string, args: string[] = []): { child: ChildProcess; until: (msg: string) => Promise<Record<string, any>> } {
  const cli = new URL('../dist/cli.js', import.meta.url).pathname
  const child = spawn(process.execPath, [cli, 'serve', '--config', file, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const events = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]()
  async function until (msg: string): Promise<Record<string, any>> {
    for (;;) {
      const { value, done } = await events.next()
      if (done === true) throw new Error(`process ended before "${msg}"`)
      const entry = JSON.parse(value as string)
      if (entry.msg === msg) return entry
    }
  }
  return { child, until }
}
