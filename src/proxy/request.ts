import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { errors, type ErrorDef } from '../errors.ts'
import { decide } from '../routing/decide.ts'
import type { CompiledContext } from '../routing/table.ts'
import type { Shadows } from '../shadow/shadows.ts'
import { logAccess } from './access-log.ts'
import { admit, toOriginForm } from './admit.ts'
import { dispatch } from './dispatch.ts'
import { sendError } from './forward.ts'
import { headersFor, plan } from './plan.ts'
import type { ProxyDeps, RejectReason } from './deps.ts'
import { rejectUpgrade, tunnel } from './upgrade.ts'

const REFUSED: Record<'bad_request' | 'body_too_large' | 'bad_path', ErrorDef> = {
  bad_request: errors.BAD_REQUEST,
  body_too_large: errors.BODY_TOO_LARGE,
  bad_path: errors.BAD_PATH
}

export interface RequestHandlers {
  /** A request, once Node has given its response the socket (pipelined ones wait their turn). */
  request (req: IncomingMessage, res: ServerResponse): void
  /** An HTTP Upgrade (WebSocket). */
  upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void
  /** Open WebSocket tunnels. */
  readonly tunnels: Set<Duplex>
}

/**
 * One request's path through the proxy: admit → decide → plan → dispatch, each
 * stage a function of its own file. `closing`: the listener's sockets whose
 * current response closes them, so that nothing pipelined behind it is processed.
 */
export function requestHandlers (deps: ProxyDeps, closing: WeakSet<Duplex>): RequestHandlers {
  const { pools, observer, log, shadows, tracing } = deps
  const tunnels = new Set<Duplex>()

  function refuse (req: IncomingMessage, res: ServerResponse, reason: RejectReason & keyof typeof REFUSED): void {
    observer.rejectedRequest(reason)
    if (reason === 'bad_request') closing.add(req.socket)
    if (reason !== 'bad_path') res.shouldKeepAlive = false
    sendError(res, REFUSED[reason])
  }

  function request (req: IncomingMessage, res: ServerResponse): void {
    const snap = deps.snapshot()
    const refused = admit(req, snap.maxBodyBytes)
    if (refused !== null) {
      refuse(req, res, refused)
      return
    }
    const d = decide(snap.table, deps.weightOf, req.method as string, req.url as string, req.headers, deps.preview)
    if (d === null) {
      refuse(req, res, 'bad_path')
      return
    }
    if (d.segment !== null) observer.segmentDecision(d.label, d.segment.label, d.side)
    const p = plan(d, req, snap, shadows !== null)
    p.trace = tracing.request(req, res, d, p)
    if (p.shadow) p.capture = (shadows as Shadows).start(d.context as CompiledContext, req, d.canonicalPath, d.query, p.body !== 'none', (u, side) => headersFor(p, d, u, side, req.headers.host), p.trace)
    if (snap.accessLog) logAccess(log, req, res, d, p, snap.accessLogQuery)
    dispatch(req, res, p, pools, observer)
  }

  /** Routed and planned like a request; the side is chosen once, when the connection opens. */
  function upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy())
    toOriginForm(req)
    const snap = deps.snapshot()
    const d = decide(snap.table, deps.weightOf, req.method as string, req.url as string, req.headers, deps.preview)
    if (d === null) {
      observer.rejectedRequest('bad_path')
      rejectUpgrade(socket, errors.BAD_PATH)
      return
    }
    if (d.segment !== null) observer.segmentDecision(d.label, d.segment.label, d.side)
    const p = plan(d, req, snap, false)
    tunnel(req, socket, head, p.target, p.label, observer, tunnels)
  }

  return { request, upgrade, tunnels }
}
