import cluster from 'node:cluster'
import { createLogger } from '../log.ts'
import { Metrics } from '../metrics.ts'
import { proxyApp } from '../proxy/listener.ts'
import { DataPlane } from '../proxy/plane.ts'
import type { FromWorker, ToWorker, WeightMap } from './messages.ts'
import { tracingFromEnv } from '../tracing/from-env.ts'
import type { Config } from '../types.ts'

/**
 * A proxy worker (`server.workers` > 1): a Fastify instance with the data
 * plane only. The primary owns the config file, the admin API and the
 * overrides, and sends this process the config and the effective weights;
 * signals are the primary's to handle.
 */
const log = createLogger().child({ worker: cluster.worker?.id })
const metrics = new Metrics({ role: 'data' })
let plane: DataPlane | null = null
const tracing = tracingFromEnv(process.env, log)
/** What is in force: what arrives while tracing is still loading is what the plane starts with. */
let config: Config | null = null
let weights: WeightMap = {}

function send (m: FromWorker): void {
  process.send?.(m)
}

async function drain (timeoutMs: number): Promise<never> {
  if (plane !== null) {
    await plane.drain(timeoutMs)
    await plane.app.close()
  }
  process.exit(0)
}

async function start (first: Config, listen: Config['server']['listen']): Promise<string> {
  const t = await tracing
  const c = config ?? first
  const secret = process.env.STRANGLER_PREVIEW_SECRET
  plane = new DataPlane(proxyApp(c.server), c, metrics, log, secret === undefined || secret === '' ? null : secret, t)
  await plane.setWeights(weights)
  await plane.listen(listen)
  return plane.address
}

process.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'init':
      weights = m.weights
      metrics.setConfig(m.config)
      config = m.config
      start(m.config, m.listen).then(
        address => send({ t: 'listening', address }),
        (err: Error) => {
          log.error({ err: err.message }, 'proxy worker cannot listen')
          process.exit(1)
        })
      break
    case 'config':
      config = m.config
      void plane?.setConfig(m.config)
      metrics.setConfig(m.config)
      send({ t: 'ack', id: m.id })
      break
    case 'weights':
      weights = m.weights
      void plane?.setWeights(m.weights)
      send({ t: 'ack', id: m.id })
      break
    case 'metrics':
      metrics.forPrimary().then(data => send({ t: 'metrics', id: m.id, data }), () => send({ t: 'metrics', id: m.id, data: { families: [], rows: [] } }))
      break
    case 'drain':
      void drain(m.timeoutMs)
      break
  }
})

for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => {})
// An ES module starts after the IPC channel opens, and a message that arrives
// before this module's listener would be lost: ask for the config only now.
send({ t: 'hello' })
// The primary is gone: nobody will send config or drain; finish what is in flight and go.
process.on('disconnect', () => { void drain(5_000) })
