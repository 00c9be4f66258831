// The ceiling for a Node proxy: node:http in front of undici Pool.dispatch,
// no routing, no metrics, only what forwarding needs to be correct (hop-by-hop
// headers dropped both ways, the upstream's Host, bodies streamed with
// backpressure, 502 before headers and an aborted connection after them).
//   node bench/servers/node-undici.mjs UPSTREAM_URL [forwarding]
// With `forwarding` it also sends the four request headers strangler-proxy adds
// (X-Forwarded-For, -Host, -Proto and a fresh X-Request-Id): the ceiling for the
// same upstream request, to tell their cost from the proxy's own.
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import { Pool } from 'undici'

const upstream = new URL(process.argv[2])
const forwarding = process.argv[3] === 'forwarding'
const pool = new Pool(upstream.origin, { pipelining: 1 })
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'expect', 'host'])

class Exchange {
  constructor (res) {
    this.res = res
    this.abort = null
    res.once('close', () => { if (!res.writableFinished && this.abort !== null) this.abort() })
  }

  onConnect (abort) { this.abort = abort }

  onHeaders (status, raw, resume, statusText) {
    if (status < 200) return true
    const headers = []
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toString('latin1')
      if (!HOP_BY_HOP.has(name.toLowerCase())) headers.push(name, raw[i + 1].toString('latin1'))
    }
    this.res.writeHead(status, statusText, headers)
    this.res.on('drain', resume)
    return true
  }

  onData (chunk) { return this.res.write(chunk) }
  onComplete () { this.res.end() }
  onError (err) {
    if (this.res.headersSent) this.res.destroy(err)
    else this.res.writeHead(502, { 'content-length': 0 }).end()
  }
}

const server = http.createServer((req, res) => {
  const headers = []
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1])
  }
  headers.push('host', upstream.host)
  if (forwarding) headers.push('x-forwarded-for', req.socket.remoteAddress, 'x-forwarded-host', req.headers.host, 'x-forwarded-proto', 'http', 'x-request-id', randomUUID())
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0'
  pool.dispatch({ path: req.url, method: req.method, headers, body: hasBody ? req : null }, new Exchange(res))
})
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`))
process.on('SIGTERM', () => process.exit(0))
