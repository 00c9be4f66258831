import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Logger } from 'pino'
import type { Decision } from '../routing/decide.ts'
import type { Plan, Target } from './plan.ts'
import { clientAddress } from './headers.ts'

/**
 * Writes the request's access-log line when its response closes. `bytesIn`:
 * request body bytes read; `bytesOut`: bytes written to the client's socket for
 * this response, status line and headers included (nginx's $bytes_sent). A
 * keep-alive socket carries one response at a time (pipelined ones wait their
 * turn), so its counter's growth over the response is this response alone.
 */
function pathOf (url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

export function logAccess (log: Logger, req: IncomingMessage, res: ServerResponse, d: Decision, plan: Plan, withQuery: boolean): void {
  const url = req.url as string
  const started = performance.now()
  const socket = req.socket
  const written = socket.bytesWritten
  let bytesIn = 0
  req.on('data', (c: Buffer) => { bytesIn += c.length })
  res.once('close', () => {
    const answered = plan.fellBack === null ? plan.target : plan.fallback as Target
    log.info({
      reqId: plan.requestId,
      traceId: plan.trace.traceId === '' ? undefined : plan.trace.traceId,
      client: clientAddress(socket.remoteAddress),
      method: req.method,
      path: withQuery ? url : pathOf(url),
      status: res.statusCode,
      bytesIn,
      bytesOut: socket.bytesWritten - written,
      ms: Math.round(performance.now() - started),
      context: d.label,
      side: answered.side,
      segment: d.segment?.label,
      fallback: plan.fellBack ?? undefined,
      upstream: answered.upstream.name
    }, 'request')
  })
}
