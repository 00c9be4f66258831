import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { parse } from 'yaml'
import { chartTools, CHART, FULLNAME, METRICS, metricsIn, NAMESPACE, only, RELEASE, ROOT, run, when, type K8s, type Run } from '../chart.ts'

const CLI = path.join(ROOT, 'dist/cli.js')
const MIGRATION_VALUES = path.join(ROOT, 'test/fixtures/helm/migration-values.yaml')
const { work, helm, render } = chartTools(t)

const kinds = (objects: K8s[]): string[] => objects.map(o => `${o.kind}/${o.metadata.name}`).sort()
const podSpec = (objects: K8s[]): any => only(objects, 'Deployment').spec.template.spec
const container = (objects: K8s[]): any => podSpec(objects).containers[0]
const routesOf = (objects: K8s[]): string => only(objects, 'ConfigMap', FULLNAME).data['routes.yaml']
const values = parse(readFileSync(path.join(CHART, 'values.yaml'), 'utf8'))

async function checkRoutes (text: string, env: NodeJS.ProcessEnv): Promise<Run> {
  const dir = mkdtempSync(path.join(work, 'routes-'))
  const file = path.join(dir, 'routes.yaml')
  writeFileSync(file, text)
  return await run(process.execPath, [CLI, 'check', '--strict', file], { PATH: process.env.PATH, ...env })
}

const REDIS = ['--set', 'state.redis.existingSecret=shop-redis']

const SWITCHES: Array<[string, string[]]> = [
  ['default values', []],
  ['config.reload=rollout', ['--set', 'config.reload=rollout']],
  ['autoscaling.enabled=true', ['--set', 'autoscaling.enabled=true']],
  ['podDisruptionBudget.enabled=false', ['--set', 'podDisruptionBudget.enabled=false']],
  ['metrics.serviceMonitor.enabled=true', ['--set', 'metrics.serviceMonitor.enabled=true']],
  ['metrics.prometheusRule.enabled=true', ['--set', 'metrics.prometheusRule.enabled=true']],
  ['grafanaDashboard.enabled=true', ['--set', 'grafanaDashboard.enabled=true']],
  ['serviceAccount.create=false', ['--set', 'serviceAccount.create=false']],
  ['adminToken.existingSecret', ['--set', 'adminToken.existingSecret=ops-token']],
  ['preStopSleepSeconds=0', ['--set', 'preStopSleepSeconds=0']],
  ['state.redis.existingSecret', REDIS],
  ['the migration fixture (every switch on)', ['-f', MIGRATION_VALUES]]
]

t.test('helm lint --strict passes with the default values and with each switch flipped', when, async t => {
  const results = await Promise.all(SWITCHES.map(([, args]) => helm(['lint', '--strict', CHART, ...args])))
  for (const [i, [name]] of SWITCHES.entries()) {
    const r = results[i]
    t.equal(r.code, 0, name, { output: r.stdout + r.stderr })
    t.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/, name)
  }
})

t.test('helm template renders every switch, each into documents that all name a kind', when, async t => {
  const rendered = await Promise.all(SWITCHES.map(([, args]) => render(t, args)))
  for (const [i, [name]] of SWITCHES.entries()) {
    const objects = rendered[i]
    t.ok(objects.length > 0 && objects.every(o => typeof o.kind === 'string' && typeof o.metadata?.name === 'string'), name)
  }
})

t.test('default values: exactly the core objects, nothing optional', when, async t => {
  const objects = await render(t)
  t.strictSame(kinds(objects), [
    `ConfigMap/${FULLNAME}`,
    `Deployment/${FULLNAME}`,
    `PodDisruptionBudget/${FULLNAME}`,
    `Secret/${FULLNAME}`,
    `Service/${FULLNAME}`,
    `Service/${FULLNAME}-admin`,
    `ServiceAccount/${FULLNAME}`
  ])
})

t.test('the pod and its container are hardened', when, async t => {
  const objects = await render(t)
  const pod = podSpec(objects)
  t.strictSame(pod.securityContext, { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } })
  t.strictSame(container(objects).securityContext, {
    runAsNonRoot: true,
    runAsUser: 1000,
    runAsGroup: 1000,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' }
  })
  t.equal(pod.automountServiceAccountToken, false)
  t.equal(only(objects, 'ServiceAccount').automountServiceAccountToken, false)
  t.strictSame(container(objects).resources, { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } })
})

t.test('the pod runs the image\'s command as the image\'s user', when, async t => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')
  const cmd = JSON.parse((/^CMD (\[.*\])$/m.exec(dockerfile) as RegExpExecArray)[1])
  const user = /^USER (\d+)(?::(\d+))?$/m.exec(dockerfile) as RegExpExecArray
  const objects = await render(t)
  t.strictSame(container(objects).command, ['node', 'dist/cli.js', 'serve', '--config', '/etc/strangler/routes.yaml'])
  t.strictSame(container(objects).command, cmd)
  t.equal(podSpec(objects).securityContext.runAsUser, Number(user[1]))
  t.equal(podSpec(objects).securityContext.runAsGroup, Number(user[2]))
})

t.test('probes: liveness on /healthz and readiness on /readyz, both on the admin port', when, async t => {
  const c = container(await render(t))
  t.strictSame(c.ports, [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { name: 'admin', containerPort: 9090, protocol: 'TCP' }])
  t.strictSame(c.livenessProbe.httpGet, { path: '/healthz', port: 'admin' })
  t.strictSame(c.readinessProbe.httpGet, { path: '/readyz', port: 'admin' })
})

t.test('the ConfigMap is mounted as a directory at /etc/strangler, never with subPath', when, async t => {
  const rendered = await Promise.all(SWITCHES.map(([, args]) => render(t, args)))
  for (const [i, [name]] of SWITCHES.entries()) {
    const objects = rendered[i]
    const pod = podSpec(objects)
    const mounts = [...pod.containers, ...(pod.initContainers ?? [])].flatMap((c: any) => c.volumeMounts ?? [])
    t.strictSame(mounts.filter((m: any) => 'subPath' in m || 'subPathExpr' in m), [], `${name}: no subPath`)
    const configVolume = pod.volumes.find((v: any) => v.configMap?.name === FULLNAME)
    t.strictSame(mounts.filter((m: any) => m.name === configVolume.name), [{ name: configVolume.name, mountPath: '/etc/strangler', readOnly: true }], name)
    t.strictSame(configVolume.configMap, { name: FULLNAME }, `${name}: the whole ConfigMap, no items`)
    t.strictSame(Object.keys(only(objects, 'ConfigMap', FULLNAME).data), ['routes.yaml'], name)
  }
})

t.test('the rendered config: the chart\'s server keys, the routes from values', when, async t => {
  const objects = await render(t)
  const config = parse(routesOf(objects))
  t.strictSame(config.server, {
    listen: '0.0.0.0:8080',
    admin: '0.0.0.0:9090',
    adminToken: '${STRANGLER_ADMIN_TOKEN}',
    stateFile: '/var/lib/strangler/state.json',
    trustProxy: [],
    accessLog: false,
    drainTimeout: '30s'
  })
  t.strictSame({ upstreams: config.upstreams, default: config.default, contexts: config.contexts }, values.config.routes)
  t.strictSame(Object.keys(config).sort(), ['contexts', 'default', 'server', 'upstreams'])
})

t.test('the state file is on a writable emptyDir: the root filesystem and the ConfigMap are read-only', when, async t => {
  const objects = await render(t)
  const pod = podSpec(objects)
  const stateDir = path.posix.dirname(parse(routesOf(objects)).server.stateFile)
  const mount = container(objects).volumeMounts.find((m: any) => m.mountPath === stateDir)
  t.equal(mount.readOnly, undefined)
  t.strictSame(pod.volumes.find((v: any) => v.name === mount.name), { name: mount.name, emptyDir: { sizeLimit: '16Mi' } })
})

t.test('the routes rendered into the ConfigMap pass strangler check --strict', when, async t => {
  const env = { STRANGLER_ADMIN_TOKEN: 'test-token', STRANGLER_REDIS_URL: 'rediss://:p%40ss@redis.shop.svc.cluster.local:6380/0' }
  const redis = SWITCHES.find(([name]) => name === 'state.redis.existingSecret') as [string, string[]]
  for (const [name, args] of [SWITCHES[0], redis, SWITCHES[SWITCHES.length - 1]]) {
    const text = routesOf(await render(t, args))
    const ok = await checkRoutes(text, env)
    t.equal(ok.code, 0, name, { output: ok.stdout + ok.stderr })
    t.match(ok.stdout, /: valid \(/, name)
    const unset = await checkRoutes(text, { STRANGLER_REDIS_URL: env.STRANGLER_REDIS_URL })
    t.equal(unset.code, 1, `${name}: the token is read from the environment, never written in the ConfigMap`)
    t.match(unset.stdout + unset.stderr, /STRANGLER_ADMIN_TOKEN is not set/)
  }
  const redisText = routesOf(await render(t, redis[1]))
  const noUrl = await checkRoutes(redisText, { STRANGLER_ADMIN_TOKEN: 'test-token' })
  t.equal(noUrl.code, 1, 'the Redis URL is read from the environment, never written in the ConfigMap')
  t.match(noUrl.stdout + noUrl.stderr, /STRANGLER_REDIS_URL is not set/)
  const notRedis = await checkRoutes(redisText, { ...env, STRANGLER_REDIS_URL: 'http://redis:6379' })
  t.equal(notRedis.code, 1, 'a Secret holding something other than a Redis URL is refused')
  t.match(notRedis.stdout + notRedis.stderr, 'url "http://redis:6379" is not a Redis URL')
  const migration = parse(routesOf(await render(t, ['-f', MIGRATION_VALUES])))
  t.equal(migration.contexts['catalog-reads'].weight, 0.5, 'fractional weights stay numbers')
  t.strictSame(migration.server.trustProxy, ['10.0.0.0/8', 'fd00::/8'])
})

t.test('the admin token reaches the pod from a Secret as STRANGLER_ADMIN_TOKEN', when, async t => {
  const generated = await render(t)
  t.strictSame(container(generated).env, [{ name: 'STRANGLER_ADMIN_TOKEN', valueFrom: { secretKeyRef: { name: FULLNAME, key: 'token' } } }])
  const secret = only(generated, 'Secret')
  t.strictSame(Object.keys(secret.data), ['token'])
  t.match(Buffer.from(secret.data.token, 'base64').toString(), /^[A-Za-z0-9]{40}$/)
  t.notOk(only(generated, 'Deployment').spec.template.metadata.annotations?.['checksum/admin-token'], 'a generated token does not roll the pods')

  const given = await render(t, ['--set', 'adminToken.value=s3cret-token'])
  t.equal(Buffer.from(only(given, 'Secret').data.token, 'base64').toString(), 's3cret-token')
  t.match(only(given, 'Deployment').spec.template.metadata.annotations['checksum/admin-token'], /^[0-9a-f]{64}$/, 'a new token rolls the pods: env is read at start')

  const existing = await render(t, ['-f', MIGRATION_VALUES])
  t.equal(existing.filter(o => o.kind === 'Secret').length, 0, 'no Secret is created for an existing one')
  t.strictSame(container(existing).env, [
    { name: 'STRANGLER_ADMIN_TOKEN', valueFrom: { secretKeyRef: { name: 'shop-strangler-admin', key: 'admin-token' } } },
    { name: 'ORDERS_URL', value: 'http://orders-v2.shop.svc.cluster.local:3000' }
  ])
})

t.test('state.redis: the URL from the existing Secret as STRANGLER_REDIS_URL, read by the routes under a per-release prefix', when, async t => {
  const objects = await render(t, REDIS)
  t.strictSame(container(objects).env, [
    { name: 'STRANGLER_ADMIN_TOKEN', valueFrom: { secretKeyRef: { name: FULLNAME, key: 'token' } } },
    { name: 'STRANGLER_REDIS_URL', valueFrom: { secretKeyRef: { name: 'shop-redis', key: 'url' } } }
  ])
  const server = parse(routesOf(objects)).server
  t.strictSame(server.state, { redis: { url: '${STRANGLER_REDIS_URL}', keyPrefix: 'checkout:shop-strangler-proxy:' } })
  t.equal(server.stateFile, '/var/lib/strangler/state.json', 'the state file and its emptyDir stay')
  t.strictSame(objects.filter(o => o.kind === 'Secret').map(o => o.metadata.name), [FULLNAME], 'the Redis Secret is never the chart\'s')
  t.strictSame(container(objects).startupProbe, { httpGet: { path: '/healthz', port: 'admin' }, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 150 })
  const checksum = only(objects, 'Deployment').spec.template.metadata.annotations['checksum/state']
  t.match(checksum, /^[0-9a-f]{64}$/)

  const given = await render(t, [...REDIS, '--set', 'state.redis.secretKey=redis-url', '--set', 'state.redis.keyPrefix=orders-fleet:', '--set', 'state.redis.startupWaitSeconds=61'])
  t.strictSame(container(given).env[1], { name: 'STRANGLER_REDIS_URL', valueFrom: { secretKeyRef: { name: 'shop-redis', key: 'redis-url' } } })
  t.strictSame(parse(routesOf(given)).server.state, { redis: { url: '${STRANGLER_REDIS_URL}', keyPrefix: 'orders-fleet:' } })
  t.equal(container(given).startupProbe.failureThreshold, 31, '61 s at one probe every 2 s')
  t.not(only(given, 'Deployment').spec.template.metadata.annotations['checksum/state'], checksum, 'a new prefix rolls the pods: the proxy reads server.state at start only')

  const other = await render(t, [...REDIS, '--set', 'fullnameOverride=blue'])
  t.equal(parse(only(other, 'ConfigMap', 'blue').data['routes.yaml']).server.state.redis.keyPrefix, 'checkout:blue:', 'another release, another prefix')
})

t.test('state.redis: the default prefix stays within the proxy\'s 100 characters with the longest names', when, async t => {
  const namespace = 'n'.repeat(63)
  const fullname = 'f'.repeat(63)
  const r = await helm(['template', RELEASE, CHART, '--namespace', namespace, '--set', `fullnameOverride=${fullname}`, ...REDIS, '--show-only', 'templates/configmap.yaml'])
  t.equal(r.code, 0, 'helm template', { stderr: r.stderr })
  const text = (parse(r.stdout) as K8s).data['routes.yaml']
  t.equal(parse(text).server.state.redis.keyPrefix, `${namespace}:${'f'.repeat(35)}:`)
  const ok = await checkRoutes(text, { STRANGLER_ADMIN_TOKEN: 'test-token', STRANGLER_REDIS_URL: 'redis://redis:6379' })
  t.equal(ok.code, 0, 'strangler check --strict', { output: ok.stdout + ok.stderr })
})

t.test('without state.redis: no Redis env, no state in the routes, no startup probe', when, async t => {
  for (const args of [[], ['--set', 'state.redis.existingSecret=', '--set', 'state.redis.keyPrefix=ignored:']]) {
    const objects = await render(t, args)
    t.strictSame(container(objects).env.map((e: any) => e.name), ['STRANGLER_ADMIN_TOKEN'], args.join(' '))
    t.notOk('state' in parse(routesOf(objects)).server, args.join(' '))
    t.equal(container(objects).startupProbe, undefined, args.join(' '))
    t.equal(only(objects, 'Deployment').spec.template.metadata.annotations, undefined, args.join(' '))
  }
})

t.test('config.reload: a checksum/config annotation only in rollout mode, following the routes', when, async t => {
  const annotations = async (args: string[]): Promise<Record<string, string>> =>
    only(await render(t, args), 'Deployment').spec.template.metadata.annotations ?? {}
  t.strictSame(await annotations([]), {}, 'hot: no annotation, pods reload in place')
  const rollout = await annotations(['--set', 'config.reload=rollout'])
  t.match(rollout, { 'checksum/config': /^[0-9a-f]{64}$/ })
  t.strictSame(await annotations(['--set', 'config.reload=rollout']), rollout, 'the same routes give the same checksum')
  const moved = await annotations(['--set', 'config.reload=rollout', '--set', 'config.routes.upstreams.monolith.timeout=5s'])
  t.not(moved['checksum/config'], rollout['checksum/config'], 'a change of the routes rolls the pods')
  const weights = await annotations(['-f', MIGRATION_VALUES])
  const moreWeight = await annotations(['-f', MIGRATION_VALUES, '--set', 'config.routes.contexts.orders.weight=25'])
  t.not(moreWeight['checksum/config'], weights['checksum/config'], 'so does a weight change')
  const unrelated = await annotations(['--set', 'config.reload=rollout', '--set', 'replicaCount=4'])
  t.equal(unrelated['checksum/config'], rollout['checksum/config'], 'a change outside the routes does not')
  t.strictSame(await annotations(['--set', 'podAnnotations.team=shop']), { team: 'shop' })
})

t.test('the proxy port on the Service, the admin port only on a ClusterIP admin Service', when, async t => {
  const objects = await render(t, ['--set', 'service.type=LoadBalancer'])
  const selector = only(objects, 'Deployment').spec.selector.matchLabels
  const proxy = only(objects, 'Service', FULLNAME)
  t.equal(proxy.spec.type, 'LoadBalancer')
  t.strictSame(proxy.spec.ports, [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }])
  t.strictSame(proxy.spec.selector, selector)
  const admin = only(objects, 'Service', `${FULLNAME}-admin`)
  t.equal(admin.spec.type, 'ClusterIP', 'the admin API is never exposed with the proxy')
  t.strictSame(admin.spec.ports, [{ name: 'admin', port: 9090, targetPort: 'admin', protocol: 'TCP' }])
  t.strictSame(admin.spec.selector, selector)
})

t.test('terminationGracePeriodSeconds covers the preStop sleep and the drain', when, async t => {
  const spec = async (args: string[]): Promise<any> => podSpec(await render(t, args))
  const defaults = await spec([])
  t.equal(defaults.terminationGracePeriodSeconds, 45, '30s drain + 5s preStop + 10')
  t.strictSame(defaults.containers[0].lifecycle, { preStop: { sleep: { seconds: 5 } } })
  t.equal((await spec(['--set', 'config.server.drainTimeout=2m'])).terminationGracePeriodSeconds, 135)
  t.equal((await spec(['--set', 'config.server.drainTimeout=1500ms'])).terminationGracePeriodSeconds, 17)
  t.equal((await spec(['--set', 'terminationGracePeriodSeconds=60'])).terminationGracePeriodSeconds, 60)
  const noSleep = await spec(['--set', 'preStopSleepSeconds=0'])
  t.equal(noSleep.containers[0].lifecycle, undefined)
  t.equal(noSleep.terminationGracePeriodSeconds, 40)
  const short = await helm(['template', RELEASE, CHART, '--set', 'terminationGracePeriodSeconds=20'])
  t.not(short.code, 0)
  t.match(short.stderr, 'terminationGracePeriodSeconds (20) must be at least drainTimeout + preStopSleepSeconds (35)')
})

t.test('PodDisruptionBudget: on by default, selecting the pods', when, async t => {
  const objects = await render(t)
  const pdb = only(objects, 'PodDisruptionBudget')
  t.strictSame(pdb.spec, { maxUnavailable: 1, selector: { matchLabels: only(objects, 'Deployment').spec.selector.matchLabels } })
  t.strictSame((await render(t, ['--set', 'podDisruptionBudget.enabled=false'])).filter(o => o.kind === 'PodDisruptionBudget'), [])
})

t.test('HorizontalPodAutoscaler only when enabled, and then it owns the replica count', when, async t => {
  const fixed = await render(t)
  t.strictSame(fixed.filter(o => o.kind === 'HorizontalPodAutoscaler'), [])
  t.equal(only(fixed, 'Deployment').spec.replicas, 2)
  const scaled = await render(t, ['--set', 'autoscaling.enabled=true'])
  const hpa = only(scaled, 'HorizontalPodAutoscaler')
  t.equal(hpa.apiVersion, 'autoscaling/v2')
  t.strictSame(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: FULLNAME })
  t.strictSame([hpa.spec.minReplicas, hpa.spec.maxReplicas], [2, 10])
  t.strictSame(hpa.spec.metrics, [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }])
  t.notOk('replicas' in only(scaled, 'Deployment').spec)
})

t.test('ServiceMonitor only when enabled: it scrapes /metrics on the admin Service', when, async t => {
  t.strictSame((await render(t)).filter(o => o.kind === 'ServiceMonitor'), [])
  const objects = await render(t, ['--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.serviceMonitor.labels.release=prom'])
  const monitor = only(objects, 'ServiceMonitor')
  t.equal(monitor.apiVersion, 'monitoring.coreos.com/v1')
  t.equal(monitor.metadata.labels?.release, 'prom')
  t.strictSame(monitor.spec.endpoints, [{ port: 'admin', path: '/metrics', interval: '30s', scrapeTimeout: '10s' }])
  t.strictSame(monitor.spec.namespaceSelector, { matchNames: [NAMESPACE] })
  const selects = (s: K8s): boolean => Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => s.metadata.labels?.[k] === v)
  t.strictSame(objects.filter(o => o.kind === 'Service' && selects(o)).map(s => s.metadata.name), [`${FULLNAME}-admin`])
})

t.test('PrometheusRule only when enabled, with the migration alerts on this release\'s metrics', when, async t => {
  t.strictSame((await render(t)).filter(o => o.kind === 'PrometheusRule'), [])
  const rule = only(await render(t, ['--set', 'metrics.prometheusRule.enabled=true']), 'PrometheusRule')
  const rules = rule.spec.groups.flatMap((g: any) => g.rules)
  t.strictSame(rules.map((r: any) => r.alert), [
    'StranglerNewSideErrorsAboveLegacy',
    'StranglerFallbackRateHigh',
    'StranglerConfigReloadFailed',
    'StranglerPodsServeDifferentConfigs',
    'StranglerWeightOverridden'
  ])
  const byName = Object.fromEntries(rules.map((r: any) => [r.alert, r]))
  for (const r of rules) {
    t.ok(metricsIn(r.expr).length > 0 && metricsIn(r.expr).every(m => METRICS.has(m)), `${r.alert} uses exported metrics only`)
    const selectors = [...r.expr.matchAll(/strangler_[a-z_]+\{([^}]*)\}/g)].map((m: RegExpMatchArray) => m[1])
    t.ok(selectors.every(s => s.startsWith(`namespace="${NAMESPACE}", job="${FULLNAME}-admin"`)), `${r.alert} is scoped to this release`)
    t.match(r.labels, { severity: /^(critical|warning|info)$/ })
  }
  const errors = byName.StranglerNewSideErrorsAboveLegacy.expr
  t.match(errors, 'side="new", code="5xx"')
  t.match(errors, 'side="legacy", code="5xx"')
  t.match(errors, ') + 0.01')
  t.equal(byName.StranglerNewSideErrorsAboveLegacy.for, '5m')
  const fallbacks = byName.StranglerFallbackRateHigh
  t.match(fallbacks.expr, 'rate(strangler_requests_total{namespace="checkout", job="shop-strangler-proxy-admin", side="new"}[5m]) or rate(strangler_fallbacks_total{namespace="checkout", job="shop-strangler-proxy-admin"}[5m])', 'sent to new: its answers and the fallbacks')
  t.match(fallbacks.expr, /\)\)\n\s*> 0\.01\n\s*and on \(namespace, context\)\n/)
  t.match(fallbacks.expr, /\) >= 0\.1\s*$/)
  t.equal(fallbacks.for, '5m')
  t.equal(fallbacks.labels.severity, 'warning', 'clients are served: a warning, not a page')
  const tuned = only(await render(t, ['--set', 'metrics.prometheusRule.enabled=true', '--set-json', 'metrics.prometheusRule.maxFallbackRatio=0.2', '--set', 'metrics.prometheusRule.for=10m']), 'PrometheusRule')
  const tunedFallbacks = tuned.spec.groups[0].rules.find((r: any) => r.alert === 'StranglerFallbackRateHigh')
  t.match(tunedFallbacks.expr, /\n\s*> 0\.2\n/)
  t.equal(tunedFallbacks.for, '10m')
  t.equal(byName.StranglerConfigReloadFailed.expr.trim(), 'strangler_config_last_reload_successful{namespace="checkout", job="shop-strangler-proxy-admin"} == 0')
  t.equal(byName.StranglerWeightOverridden.expr.trim(), 'strangler_context_overridden{namespace="checkout", job="shop-strangler-proxy-admin"} == 1')
  t.equal(byName.StranglerWeightOverridden.for, '2h')
  t.equal(byName.StranglerPodsServeDifferentConfigs.for, '15m')
  const shared = only(await render(t, ['--set', 'metrics.prometheusRule.enabled=true', '--set', 'state.redis.existingSecret=shop-redis']), 'PrometheusRule')
  const down = shared.spec.groups.flatMap((g: any) => g.rules).find((r: any) => r.alert === 'StranglerStateStoreDown')
  t.equal(down.expr.trim(), 'strangler_state_store_up{namespace="checkout", job="shop-strangler-proxy-admin"} == 0', 'with state.redis: an alert when Redis is unreachable')
  t.equal(down.labels.severity, 'critical')
  t.match(shared.spec.groups[0].rules.find((r: any) => r.alert === 'StranglerWeightOverridden').annotations.description, 'Overrides are shared by every pod through Redis and outlive them.')
  t.match(byName.StranglerWeightOverridden.annotations.description, 'Overrides live in the pod: a new pod starts at the configured weight.')
})

t.test('the Grafana dashboard: the panels asked for, on exported metrics only, shipped as a ConfigMap on request', when, async t => {
  const text = readFileSync(path.join(CHART, 'dashboards/strangler.json'), 'utf8')
  const dashboard = JSON.parse(text)
  t.equal(dashboard.uid, 'strangler-proxy')
  const panels = dashboard.panels.filter((p: any) => p.type !== 'row')
  t.strictSame(panels.map((p: any) => p.title), [
    'Traffic share per context and side',
    'Requests per second by context and side',
    '5xx ratio, new vs legacy',
    'Latency p50 and p99, new vs legacy',
    'Upstream errors by reason',
    'Fallbacks to legacy, share of requests sent to new',
    'Weights: configured vs effective',
    'Config reloads',
    'Config in force per pod',
    'Requests refused before routing'
  ])
  for (const p of panels) {
    const exprs = p.targets.map((target: any) => target.expr as string)
    t.ok(exprs.length > 0 && exprs.every((e: string) => metricsIn(e).length > 0 && metricsIn(e).every(m => METRICS.has(m))), `${p.title}: exported metrics only`)
    t.strictSame(p.datasource, { type: 'prometheus', uid: '${datasource}' }, `${p.title}: the datasource variable`)
  }
  const exprsOf = (title: string): string => panels.find((p: any) => p.title === title).targets.map((x: any) => x.expr).join('\n')
  t.match(exprsOf('Latency p50 and p99, new vs legacy'), 'histogram_quantile(0.99, sum by (le, context, side) (rate(strangler_request_duration_seconds_bucket')
  t.match(exprsOf('Fallbacks to legacy, share of requests sent to new'), /sum by \(context, reason\) \(rate\(strangler_fallbacks_total\{[^}]*\}\[\$__rate_interval\]\)\)\s*\/ on \(context\) group_left\s*sum by \(context\) \(rate\(strangler_requests_total\{[^}]*side="new"\}\[\$__rate_interval\]\) or rate\(strangler_fallbacks_total/)
  const share = panels.find((p: any) => p.title === 'Traffic share per context and side')
  t.strictSame(share.targets.map((x: any) => x.legendFormat), ['{{context}} {{side}}', '{{context}} legacy by fallback (new failed)'], 'rescued requests as their own series beside the sides')
  t.match(share.targets[1].expr, /^sum by \(context\) \(rate\(strangler_fallbacks_total\{[^}]*\}\[\$__rate_interval\]\)\)\s*\/ on \(context\)\s*sum by \(context\) \(rate\(strangler_requests_total\{/)
  t.match(exprsOf('Weights: configured vs effective'), 'source="config"')
  t.match(exprsOf('Weights: configured vs effective'), 'source="effective"')
  t.strictSame(dashboard.templating.list.map((v: any) => v.name), ['datasource', 'namespace', 'job', 'context'])

  t.strictSame((await render(t)).filter(o => o.metadata.name === `${FULLNAME}-dashboard`), [])
  const shipped = only(await render(t, ['--set', 'grafanaDashboard.enabled=true']), 'ConfigMap', `${FULLNAME}-dashboard`)
  t.equal(shipped.metadata.labels?.grafana_dashboard, '1')
  t.strictSame(JSON.parse(shipped.data['strangler.json']), dashboard)
})

t.test('values.schema.json rejects bad values before anything renders', when, async t => {
  const bad: Array<[string[], string]> = [
    [['--set', 'replicaCount=-1'], "at '/replicaCount'"],
    [['--set', 'config.reload=sometimes'], "at '/config/reload'"],
    [['--set-string', 'autoscaling.enabled=true'], "at '/autoscaling/enabled'"],
    [['--set', 'podDisruptionBudget.enabled=yes'], "at '/podDisruptionBudget/enabled'"],
    [['--set', 'replicas=3'], "additional properties 'replicas' not allowed"],
    [['--set', 'config.server.listen=0.0.0.0:80'], "additional properties 'listen' not allowed"],
    [['--set', 'config.server.drainTimeout=30'], "at '/config/server/drainTimeout'"],
    [['-f', MIGRATION_VALUES, '--set', 'config.routes.contexts.orders.weight=101'], "at '/config/routes/contexts/orders/weight'"],
    [['--set', 'config.routes.contexts.orders.weight=5'], "at '/config/routes/contexts/orders': missing properties 'match', 'legacy', 'new'"],
    [['--set', 'config.routes.server.admin=0.0.0.0:9091'], "additional properties 'server' not allowed"],
    [['--set', 'extraEnv[0].name=STRANGLER_ADMIN_TOKEN'], "at '/extraEnv/0/name'"],
    [['--set', 'extraEnv[0].name=STRANGLER_REDIS_URL'], "at '/extraEnv/0/name'"],
    [['--set', 'state.redis.existingSecret=3'], "at '/state/redis/existingSecret'"],
    [['--set-json', 'metrics.prometheusRule.maxFallbackRatio=1.5'], "at '/metrics/prometheusRule/maxFallbackRatio': maximum: got 1.5, want 1"],
    [['--set', 'state.redis.secretKey='], "at '/state/redis/secretKey'"],
    [['--set', `state.redis.keyPrefix=${'x'.repeat(101)}`], "at '/state/redis/keyPrefix'"],
    [['--set', 'state.redis.startupWaitSeconds=1'], "at '/state/redis/startupWaitSeconds'"],
    [['--set', 'state.redis.url=redis://redis:6379'], "additional properties 'url' not allowed"],
    [['--set', 'config.server.state.redis.url=redis://redis:6379'], "additional properties 'state' not allowed"]
  ]
  const results = await Promise.all(bad.map(([args]) => helm(['template', RELEASE, CHART, ...args])))
  for (const [i, [args, where]] of bad.entries()) {
    const r = results[i]
    t.not(r.code, 0, args.join(' '))
    t.match(r.stderr, "values don't meet the specifications of the schema", args.join(' '))
    t.match(r.stderr, where, args.join(' '))
  }
})

async function notesOf (t: Test, args: string[]): Promise<string> {
  const r = await helm(['install', RELEASE, CHART, '--namespace', NAMESPACE, '--dry-run=client', ...args])
  t.equal(r.code, 0, 'install --dry-run=client', { stderr: r.stderr })
  return r.stdout.slice(r.stdout.indexOf('NOTES:'))
}

t.test('NOTES.txt without state.redis tells how to roll back, on every pod, and how to make it last', when, async t => {
  const notes = await notesOf(t, [])
  t.match(notes, `kubectl -n ${NAMESPACE} get pods -l app.kubernetes.io/name=strangler-proxy,app.kubernetes.io/instance=${RELEASE} -o name`)
  t.match(notes, `kubectl -n ${NAMESPACE} exec "$pod" -- node dist/cli.js rollback CONTEXT --reason`)
  t.match(notes, `kubectl -n ${NAMESPACE} port-forward pod/POD 9090:9090`)
  t.match(notes, `get secret ${FULLNAME} -o jsonpath='{.data.token}'`)
  t.match(notes, 'curl -X POST -H "Authorization: Bearer $TOKEN"')
  t.match(notes, 'localhost:9090/contexts/CONTEXT/rollback')
  t.match(notes, /set the context's\s+weight to 0 in config\.routes/)
  t.notMatch(notes, 'STRANGLER_STATE_STORE_DOWN')
})

t.test('NOTES.txt with state.redis: one call through the admin Service rolls back every pod', when, async t => {
  const notes = await notesOf(t, REDIS)
  t.match(notes, 'Overrides are shared through Redis (Secret shop-redis, keys checkout:shop-strangler-proxy:*)')
  t.match(notes, 'one call to any pod (through the admin Service) rolls back every pod')
  t.match(notes, `kubectl -n ${NAMESPACE} exec deploy/${FULLNAME} -- node dist/cli.js rollback CONTEXT --reason`)
  t.match(notes, `kubectl -n ${NAMESPACE} port-forward svc/${FULLNAME}-admin 9090:9090`)
  t.match(notes, `get secret ${FULLNAME} -o jsonpath='{.data.token}'`)
  t.match(notes, 'localhost:9090/contexts/CONTEXT/rollback')
  t.match(notes, /answer 503 STRANGLER_STATE_STORE_DOWN, applied nowhere \(metric\s+strangler_state_store_up 0\)/)
  t.notMatch(notes, 'for pod in')
  t.notMatch(notes, 'port-forward pod/')
})
