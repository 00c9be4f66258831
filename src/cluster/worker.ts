import cluster from 'node:cluster'
import { createLogger } from '../log.ts'
import { Metrics } from '../metrics.ts'
import { DataPlane } from '../proxy/plane.ts'
import type { FromWorker, ToWorker } from './messages.ts'
import { tracingFromEnv } from '../tracing/from-env.ts'
import type { Config } from '../types.ts'
import { effectiveWeight } from '../state/weight.ts'

/**
 * A proxy worker (`server.workers` > 1): the data plane only. The primary owns
 * the config file, the admin API and the overrides, and sends this process the
 * config and the effective weights; signals are the primary's to handle.
 */
const log = createLogger().child({ worker: cluster.worker?.id })
const metrics = new Metrics({ role: 'data' })
const weights = new Map<string, number>()
const weightOf = effectiveWeight(weights)
let plane: DataPlane | null = null
const tracing = tracingFromEnv(process.env, log)
/** The config in force: one that arrives while tracing is still loading is the one the plane starts with. */
let config: Config | null = null

function send (m: FromWorker): void {
  process.send?.(m)
}

function setWeights (map: Record<string, number>): void {
  weights.clear()
  for (const [name, bp] of Object.entries(map)) weights.set(name, bp)
}

async function drain (timeoutMs: number): Promise<never> {
  await plane?.drain(timeoutMs)
  process.exit(0)
}

process.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'init':
      setWeights(m.weights)
      metrics.setConfig(m.config)
      config = m.config
      void tracing.then(t => {
        plane = new DataPlane(config as Config, weightOf, metrics, log, process.env.STRANGLER_PREVIEW_SECRET === undefined || process.env.STRANGLER_PREVIEW_SECRET === '' ? null : process.env.STRANGLER_PREVIEW_SECRET, t)
        return plane.listen(m.config.server.listen)
      }).then(
        () => send({ t: 'listening', address: (plane as DataPlane).address }),
        (err: Error) => {
          log.error({ err: err.message }, 'proxy worker cannot listen')
          process.exit(1)
        })
      break
    case 'config':
      config = m.config
      plane?.setConfig(m.config)
      metrics.setConfig(m.config)
      send({ t: 'ack', id: m.id })
      break
    case 'weights':
      setWeights(m.weights)
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
