import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { get, routes, tempDir } from '../helpers.ts'
import { collector, serve } from '../otlp.ts'
import { ok, scriptedUpstream } from '../raw-upstream.ts'

const TRACE = '0af7651916cd43dd8448eb211c80319c'
const PARENT = 'b7ad6b7169203331'

t.test('without OTEL_EXPORTER_OTLP_ENDPOINT no OpenTelemetry SDK module is loaded, and a client\'s traceparent passes untouched', async t => {
  const dir = tempDir(t)
  const probe = path.join(dir, 'probe.cjs')
  // Written at exit: every module file CommonJS loaded (the SDK packages are CommonJS, imported or required).
  writeFileSync(probe, 'process.on(\'exit\', () => require(\'fs\').writeFileSync(process.env.PROBE_OUT, JSON.stringify(Object.keys(require(\'module\')._cache))))')
  const loaded = async (env: Record<string, string>): Promise<string[]> => {
    const out = path.join(dir, `${Object.keys(env).length}.json`)
    const up = await scriptedUpstream(t, () => ok())
    const p = await serve(t, routes({ legacy: up.url, new: up.url, weight: 0 }), { ...env, PROBE_OUT: out }, ['--require', probe])
    await get(`${p.base}/api/orders`, { headers: { traceparent: `00-${TRACE}-${PARENT}-01` } })
    await p.stop()
    if (Object.keys(env).length === 0) t.strictSame(up.requests[0].headers.filter(([n]) => n.toLowerCase() === 'traceparent').map(([, v]) => v), [`00-${TRACE}-${PARENT}-01`])
    // prom-client loads @opentelemetry/api (the no-op API, for exemplars) whatever we do.
    return (JSON.parse(readFileSync(out, 'utf8')) as string[]).filter(f => f.includes('/@opentelemetry/') && !f.includes('/@opentelemetry/api/'))
  }
  const otlp = await collector(t)
  t.ok((await loaded({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })).some(f => f.includes('/@opentelemetry/sdk-trace-base/')), 'the probe sees the SDK when tracing is on')
  t.strictSame(await loaded({}), [])
})
