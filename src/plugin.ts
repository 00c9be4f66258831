import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { Logger } from 'pino'
import { kServe, loadAtStart, storeFor, Strangler, type ServeHandle, type StartOptions } from './control.ts'
import { DataPlane } from './proxy/plane.ts'
import { tracingFromEnv } from './tracing/from-env.ts'

export interface StranglerOptions {
  /** The routes file (YAML); watched and hot-reloaded. */
  configFile: string
  /** Start the admin listener named in server.admin (default true). */
  admin?: boolean
  /** Watch the file for changes (default true); SIGHUP is the app's to wire (POST /reload on the admin API works either way). */
  watch?: boolean
  /** Where ${VAR} in the file is read from (default process.env). */
  env?: Record<string, string | undefined>
  /** Where strangler-proxy logs (default: the app's logger). */
  log?: Logger
}

/**
 * The data plane on `app` and the control side over it. Registered by a
 * user's app, or by `strangler serve` on its own listener (src/main.ts).
 */
async function attach (app: FastifyInstance, opts: StartOptions & { [kServe]?: ServeHandle }): Promise<Strangler> {
  const env = opts.env ?? process.env
  const log = opts.log ?? app.log as unknown as Logger
  const config = opts[kServe]?.config ?? loadAtStart(opts.configFile, env, log)
  if (config.server.workers > 1) {
    throw new Error(`server.workers is ${config.server.workers}: inside a Fastify app strangler-proxy forwards in the app's own process, since the app owns its listener. Run more processes of the app instead (or strangler serve, which forks workers).`)
  }
  const store = opts.store ?? await storeFor(config, log)
  // The OpenTelemetry SDK reads process.env, whatever `env` says.
  const tracing = await tracingFromEnv(process.env, log)
  const secret = env.STRANGLER_PREVIEW_SECRET
  const s = new Strangler({ ...opts, env }, log, config, store, observer => new DataPlane(app, config, observer, log, secret === undefined || secret === '' ? null : secret, tracing))
  // Before the app closes its listener: the drain stops it itself, after the responses in flight.
  app.addHook('preClose', () => s.close())
  try {
    await s.begin()
  } catch (err) {
    await s.close()
    throw err
  }
  if (s.admin !== null) log.info({ admin: s.adminAddress }, 'strangler admin listening')
  opts[kServe]?.started(s)
  return s
}

/**
 * strangler-proxy as a Fastify plugin: every request that reaches it (what no
 * route of the app claims) is routed by the YAML file; closing the app drains
 * it and closes its admin listener.
 *
 *   await app.register(strangler, { configFile: './routes.yaml' })
 */
const strangler: FastifyPluginAsync<StranglerOptions> = async (app, opts) => {
  await attach(app, opts)
}

export default strangler
export { strangler }
