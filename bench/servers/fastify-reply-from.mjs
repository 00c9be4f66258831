// Bare @fastify/reply-from with its defaults: one catch-all route.   node bench/servers/fastify-reply-from.mjs UPSTREAM_URL
import Fastify from 'fastify'
import replyFrom from '@fastify/reply-from'

const app = Fastify({ logger: false })
await app.register(replyFrom, { base: process.argv[2] })
app.all('/*', (request, reply) => reply.from(request.url))
await app.listen({ host: '127.0.0.1', port: 0 })
process.stdout.write(`${JSON.stringify({ port: app.server.address().port })}\n`)
process.on('SIGTERM', () => process.exit(0))
