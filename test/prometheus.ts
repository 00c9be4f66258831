import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as wait } from 'node:timers/promises'
import type { Test } from 'tap'
import { stringify } from 'yaml'

/** A PromQL answer: `result` is a vector, each sample's value a string. */
export interface Vector { metric: Record<string, string>; value: [number, string] }

export interface Prometheus {
  query: (promql: string) => Promise<Vector[]>
  labelValues: (label: string, match: string) => Promise<string[]>
  /** Polls `promql` (every 100 ms, for at most 30 s) until `ready` holds for its answer. */
  until: (promql: string, ready: (v: Vector[]) => boolean) => Promise<Vector[]>
}

/**
 * A real Prometheus (Debian's package) scraping `target` every second, with
 * the labels the chart's ServiceMonitor gives the admin job, in a temporary
 * folder removed at the end of `t`.
 */
export async function prometheus (t: Test, target: string, labels: Record<string, string>, job: string): Promise<Prometheus> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strangler-prometheus-'))
  writeFileSync(path.join(dir, 'prometheus.yml'), stringify({
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    scrape_configs: [{ job_name: job, static_configs: [{ targets: [target], labels }] }]
  }))
  const child = spawn('/usr/bin/prometheus', [
    `--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
    '--web.listen-address=127.0.0.1:0', '--log.level=info'
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  t.teardown(async () => {
    if (child.exitCode === null) {
      child.kill('SIGKILL')
      await new Promise(resolve => child.once('exit', resolve))
    }
    rmSync(dir, { recursive: true, force: true })
  })
  // It binds port 0 and logs the port it got.
  const base = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stderr })
    lines.on('line', line => {
      const m = /msg="Listening on" address=(\S+)/.exec(line)
      if (m !== null) resolve(`http://${m[1]}`)
    })
    child.once('exit', code => reject(new Error(`prometheus exited with ${code} before listening`)))
  })
  async function api (route: string, params: Record<string, string>): Promise<any> {
    const res = await fetch(`${base}/api/v1/${route}?${new URLSearchParams(params)}`)
    const body = await res.json() as { status: string; data: any; error?: string }
    if (body.status !== 'success') throw new Error(`${route} ${JSON.stringify(params)}: ${body.error ?? res.status}`)
    return body.data
  }
  const query = async (promql: string): Promise<Vector[]> => (await api('query', { query: promql })).result
  return {
    query,
    labelValues: async (label, match) => await api(`label/${label}/values`, { 'match[]': match }),
    async until (promql, ready) {
      const deadline = Date.now() + 30_000
      for (;;) {
        const v = await query(promql)
        if (ready(v)) return v
        if (Date.now() > deadline) throw new Error(`${promql}: not ready after 30 s (last answer ${JSON.stringify(v)})`)
        await wait(100)
      }
    }
  }
}
