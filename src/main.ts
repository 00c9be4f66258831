import { createLogger } from './log.ts'
import { Fleet } from './cluster/fleet.ts'
import { kServe, loadAtStart, storeFor, Strangler, type StartOptions } from './control.ts'
import strangler from './plugin.ts'
import { proxyApp } from './proxy/listener.ts'

export { Strangler, StartError, type ReloadResult, type StartOptions } from './control.ts'

/**
 * `strangler serve`: the config read once; then either a Fastify instance on
 * strangler's own listener with the plugin and nothing else, or, with
 * `server.workers` > 1, the control side here and a Fleet of workers (each
 * one such Fastify instance with the data plane only). The proxy listens
 * last, so that nothing is served before the overrides are restored.
 */
export async function startStrangler (opts: StartOptions): Promise<Strangler> {
  const env = opts.env ?? process.env
  const log = opts.log ?? createLogger(env)
  const config = loadAtStart(opts.configFile, env, log)
  const { server } = config
  let s: Strangler
  if (server.workers > 1) {
    const store = opts.store ?? await storeFor(config, log)
    s = new Strangler({ ...opts, env }, log, config, store, () => new Fleet(() => s.config, () => s.weights(), server.workers, log))
    await s.begin()
  } else {
    const app = proxyApp(server)
    const handle: { s: Strangler | null } = { s: null }
    const options = { ...opts, env, log, [kServe]: { config, started: (x: Strangler) => { handle.s = x } } }
    await app.register(strangler, options)
    if (handle.s === null) throw new Error('strangler-proxy did not start')
    s = handle.s
  }
  try {
    await s.plane.listen(server.listen)
  } catch (err) {
    await s.close()
    throw err
  }
  log.info({ hash: config.hash, listen: s.proxyAddress, admin: s.adminAddress, workers: server.workers, contexts: config.contexts.length }, 'proxy listening')
  return s
}
