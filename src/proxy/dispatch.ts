import type { IncomingMessage, ServerResponse } from 'node:http'
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream'
import { FallbackHandler } from './fallback.ts'
import { Exchange, send, TOO_LARGE, type ForwardObserver } from './forward.ts'
import type { Plan } from './plan.ts'
import type { UpstreamPools } from './upstreams.ts'

/** Passes a request body on until it exceeds `limit` bytes, then fails it: the upstream never sees it complete. */
class BodyLimit extends Transform {
  #seen = 0
  constructor (private readonly limit: number) {
    super()
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen > this.limit) done(Object.assign(new Error('request body too large'), { code: TOO_LARGE }))
    else done(null, chunk)
  }
}

function start (res: ServerResponse, plan: Plan, pools: UpstreamPools, observer: ForwardObserver, method: string, body: Buffer | Readable | null): void {
  const answer = new Exchange(res, observer, plan.label, plan.target.side, plan.capture, plan.target.answers)
  const handler = plan.fallback === null ? answer : new FallbackHandler(answer, plan, pools, observer, method, body as Buffer | null)
  send(pools, plan.target, method, body, handler)
}

/**
 * The last stage: sends the planned request, its body as the plan says, and
 * answers the client from the upstream's answer (or from legacy's, through the
 * fallback handler, when the plan has a fallback).
 */
export function dispatch (req: IncomingMessage, res: ServerResponse, plan: Plan, pools: UpstreamPools, observer: ForwardObserver): void {
  const method = req.method as string
  switch (plan.body) {
    case 'none':
      start(res, plan, pools, observer, method, null)
      return
    case 'streamed': {
      // undici destroys a failed request's body stream; destroying `req` itself would
      // reset the client's socket before it could be told 502.
      const body = plan.maxBodyBytes > 0 ? new BodyLimit(plan.maxBodyBytes) : new PassThrough()
      req.pipe(body)
      start(res, plan, pools, observer, method, body)
      return
    }
    case 'held': {
      // At most the fallback's maxBodyBytes, announced by Content-Length: plan checked it.
      const parts: Buffer[] = []
      req.on('data', (c: Buffer) => parts.push(c))
      req.once('end', () => start(res, plan, pools, observer, method, Buffer.concat(parts)))
    }
  }
}
