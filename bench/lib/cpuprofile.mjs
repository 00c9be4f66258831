// Summarises a V8 .cpuprofile: self time by function and by where the code lives.
import { relative } from 'node:path'

const ROOT = new URL('../../', import.meta.url).pathname

function where (url) {
  if (url === '') return ''
  const path = url.startsWith('file://') ? new URL(url).pathname : url
  return path.startsWith(ROOT) ? relative(ROOT, path) : path
}

/** Which layer a frame belongs to: the proxy's code, a dependency, Node itself, V8. */
export function layer (url, functionName) {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC'
    if (functionName === '(idle)') return 'idle'
    if (functionName === '(program)') return 'V8/native (program)'
    return `native: ${functionName}`
  }
  const w = where(url)
  if (w.startsWith('dist/') || w.startsWith('src/')) return 'strangler (dist/)'
  if (w.startsWith('bench/')) return 'bench server'
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(w)
  if (dep) return dep[1]
  if (w.startsWith('node:')) return `node core (${w.replace(/^node:(internal\/)?/, '').split('/')[0]})`
  return w
}

/**
 * `window` ({ fromUs, toUs } on the monotonic clock that V8's profiler and
 * process.hrtime share) keeps only the samples taken under load, leaving out
 * startup and shutdown.
 */
export function summarise (profile, top = 25, window = null) {
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const self = new Map()
  const { samples, timeDeltas } = profile
  let at = profile.startTime
  for (let i = 0; i < samples.length; i++) {
    at += timeDeltas[i]
    if (window !== null && (at < window.fromUs || at > window.toUs)) continue
    const dt = timeDeltas[i + 1] ?? 0
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt)
  }
  let total = 0
  const fns = new Map()
  const layers = new Map()
  for (const [id, us] of self) {
    const { callFrame: f } = byId.get(id)
    total += us
    const key = `${f.functionName || '(anonymous)'}\t${where(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`
    fns.set(key, (fns.get(key) ?? 0) + us)
    const l = layer(f.url, f.functionName)
    layers.set(l, (layers.get(l) ?? 0) + us)
  }
  const busy = total - (layers.get('idle') ?? 0)
  const rows = (map, n) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n)
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    functions: rows(fns, top).map(([key, us]) => {
      const [name, at] = key.split('\t')
      return { name, at, ms: us / 1000, pctBusy: (100 * us) / busy }
    }),
    layers: rows(layers, 30).map(([name, us]) => ({ name, ms: us / 1000, pctBusy: name === 'idle' ? null : (100 * us) / busy }))
  }
}
