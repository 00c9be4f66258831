import http from 'node:http'
import type { Duplex } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import type { ServerConfig } from '../types.ts'
import type { ProxyHandlers } from './server.ts'

/** Every method Node's parser accepts; CONNECT never reaches a request handler (see ProxyHandlers.connect). */
export const PROXIED_METHODS = http.METHODS.filter(m => m !== 'CONNECT')

/** Listeners made by proxyApp, and where their handlers are bound once the plugin has built them. */
const slots = new WeakMap<http.Server, { handlers: ProxyHandlers | null }>()

/**
 * The Fastify instance of `strangler serve` (and of each worker): its
 * http.Server is ours (serverFactory), with the limits of `server` and our
 * answers to parse errors, CONNECT and upgrades, and Fastify adds nothing per
 * request but its router and hooks: no logger, no body parsing (every method
 * is bodyless to it, so bodies stay on the socket for forwarding), no 503 of
 * its own while closing (the drain decides), and targets its router cannot
 * decode go to the proxy, which answers them with its own 400.
 */
export function proxyApp (limits: ServerConfig): FastifyInstance {
  const slot: { handlers: ProxyHandlers | null } = { handlers: null }
  const bound = (): ProxyHandlers => {
    if (slot.handlers === null) throw new Error('the proxy listener has no handlers: register strangler-proxy first')
    return slot.handlers
  }
  const app = Fastify({
    logger: false,
    return503OnClosing: false,
    forceCloseConnections: false,
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Duplex) => bound().clientError(err, socket),
    frameworkErrors: (_err, request, reply) => {
      reply.hijack()
      bound().request(request.raw, reply.raw)
    },
    serverFactory: handler => {
      const server = http.createServer({
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        maxHeaderSize: limits.maxHeaderBytes,
        // Node checks both timeouts only this often (30 s by default): slow clients would outlive them.
        connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.headersTimeoutMs / 2))),
        // Checked by the request handler, so that what is pipelined behind the refusal is never processed.
        requireHostHeader: false
      }, handler)
      // Node ignores headers past this count without a word: the size limit (maxHeaderBytes) bounds them instead.
      server.maxHeadersCount = 0
      server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => bound().upgrade(req, socket, head))
      server.on('connect', (req: http.IncomingMessage, socket: Duplex) => bound().connect(req, socket))
      slots.set(server, slot)
      return server
    }
  })
  for (const method of PROXIED_METHODS) app.addHttpMethod(method, { hasBody: false, overrideExisting: true })
  return app
}

/**
 * Gives the handlers to the listener of `app`. A proxyApp listener takes them
 * all; any other (a user's app) gets the upgrade handler only: its parse
 * errors, limits and CONNECT stay the app's.
 */
export function bindListener (app: FastifyInstance, handlers: ProxyHandlers): void {
  const slot = slots.get(app.server)
  if (slot !== undefined) slot.handlers = handlers
  else app.server.on('upgrade', handlers.upgrade)
}

/**
 * One catch-all route for every method: routes the app registered (before or
 * after) keep their paths, the proxy takes the rest. Request bodies are never
 * read by Fastify: a content-type parser that consumes nothing stands for all
 * (in a proxyApp it is never called).
 */
export function proxyRoute (app: FastifyInstance, handlers: ProxyHandlers): void {
  for (const method of PROXIED_METHODS) {
    if (!app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: true })
  }
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, _payload, done) => done(null))
  const request = handlers.request
  app.route({
    method: PROXIED_METHODS,
    url: '/*',
    exposeHeadRoute: false,
    handler (req, reply) {
      reply.hijack()
      request(req.raw, reply.raw)
    }
  })
}
