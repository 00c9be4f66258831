import { readFile } from 'node:fs/promises'
import type { FastifyInstance, FastifyReply, onRequestHookHandler } from 'fastify'
import type { Config } from '../../types.ts'
import type { Dormant } from '../../state/store.ts'
import type { ContextStatus } from '../status.ts'
import { css, html } from './page.ts'
import { LiveRates, type MetricFamily } from './rates.ts'
import { boardData } from './rows.ts'

export interface BoardDeps {
  config: () => Config
  loadedAt: () => Date
  lastReloadError: () => string[] | null
  status: () => ContextStatus[]
  dormant: () => Dormant[]
  /** Every process's metrics (aggregated over workers) as prom-client JSON. */
  metricsJSON: () => Promise<MetricFamily[]>
  /** Runs before the data route: the token check when server.boardAuth is on. */
  authorizeRead: onRequestHookHandler
}

/**
 * Nothing but the admin origin's own script and style, no framing (the page
 * has buttons that move traffic), nothing cached.
 */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store'
}

function asset (reply: FastifyReply, type: string, body: string): FastifyReply {
  return reply.headers(PAGE_HEADERS).type(type).send(body)
}

/**
 * The board's browser code as JavaScript, read once: `npm run build` compiles
 * browser.ts to browser.js beside the built routes.js. Run from the sources
 * (the tests, after that build) it is read from dist/ all the same, so that
 * no production file loads the TypeScript compiler, a dev dependency. The
 * source map comment is dropped: the map is not served.
 */
async function browserScript (): Promise<string> {
  const built = import.meta.url.endsWith('.js') ? new URL('./browser.js', import.meta.url) : new URL('../../../dist/admin/board/browser.js', import.meta.url)
  return (await readFile(built, 'utf8')).replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n')
}

let script: Promise<string> | null = null

/**
 * The migration board: the page (`/`, `/board.js`, `/board.css`, no data in
 * them, so always served) and its data (`/board/data`, behind the token when
 * `server.boardAuth` is on). The page polls the data and acts through the
 * admin API's own routes.
 */
export function registerBoard (app: FastifyInstance, deps: BoardDeps): void {
  const rates = new LiveRates(deps.metricsJSON)
  app.get('/', async (_req, reply) => asset(reply, 'text/html; charset=utf-8', html))
  app.get('/board.js', async (_req, reply) => asset(reply, 'text/javascript; charset=utf-8', await (script ??= browserScript())))
  app.get('/board.css', async (_req, reply) => asset(reply, 'text/css; charset=utf-8', css))
  // Browsers ask for it whatever the page says; an empty answer keeps their consoles clean.
  app.get('/favicon.ico', async (_req, reply) => reply.code(204).headers(PAGE_HEADERS).send())
  app.get('/board/data', { onRequest: deps.authorizeRead }, async (_req, reply) => {
    const { latest, window } = await rates.read()
    const data = boardData({ config: deps.config(), status: deps.status(), loadedAt: deps.loadedAt(), lastError: deps.lastReloadError(), latest, window, dormant: deps.dormant() })
    return reply.headers({ 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }).send(data)
  })
}
