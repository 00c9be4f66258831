// Bare @fastify/http-proxy with its defaults.   node bench/servers/fastify-http-proxy.mjs UPSTREAM_URL
import Fastify from 'fastify'
import httpProxy from '@fastify/http-proxy'

const app = Fastify({ logger: false })
await app.register(httpProxy, { upstream: process.argv[2] })
await app.listen({ host: '127.0.0.1', port: 0 })
process.stdout.write(`${JSON.stringify({ port: app.server.address().port })}\n`)
process.on('SIGTERM', () => process.exit(0))
