import { mkdtempSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { stringify } from 'yaml'
import { chartTools, FULLNAME, NAMESPACE, only, run, when } from '../chart.ts'

// Every alert of the chart's PrometheusRule, rendered by helm, replayed by
// promtool (Debian's prometheus package) on series shaped like the proxy's.
const PROMTOOL = '/usr/bin/promtool'
const { work, render } = chartTools(t)

interface Rule { alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> }
type Series = { series: string; values: string }

/** A series of the release's admin job on one pod, as the ServiceMonitor scrapes it. */
const series = (name: string, labels: string, values: string, pod = `${FULLNAME}-0`): Series =>
  ({ series: `${name}{namespace="${NAMESPACE}", job="${FULLNAME}-admin", pod="${pod}"${labels === '' ? '' : `, ${labels}`}}`, values })

/** The alert promtool must see: the rule's labels and its annotations with $labels and $value filled in. */
function firing (rule: Rule, labels: Record<string, string>, value = ''): object {
  const fill = (text: string): string => text
    .replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name: string) => labels[name] ?? '')
    .replace(/\{\{ \$value(?: \| humanizePercentage)? \}\}/g, value)
  return {
    exp_labels: { ...rule.labels, ...labels },
    exp_annotations: Object.fromEntries(Object.entries(rule.annotations).map(([k, v]) => [k, fill(v)]))
  }
}

interface Case { name: string; inputs: Series[]; checks: Array<[string, object[]]> }

async function rulesOf (t: Test, args: string[] = []): Promise<{ groups: unknown[]; byName: Record<string, Rule> }> {
  const rule = only(await render(t, ['--set', 'metrics.prometheusRule.enabled=true', ...args]), 'PrometheusRule')
  const rules = rule.spec.groups.flatMap((g: { rules: Rule[] }) => g.rules) as Rule[]
  return { groups: rule.spec.groups, byName: Object.fromEntries(rules.map(r => [r.alert, r])) }
}

/**
 * Runs `cases` for `alert` through promtool on the rendered rules; then again
 * with that alert's expression made one that never fires: the cases that
 * expect it must then fail, so the test can tell.
 */
async function replay (t: Test, groups: unknown[], alert: string, cases: Case[]): Promise<void> {
  const dir = mkdtempSync(path.join(work, 'promtool-'))
  const tests = cases.map(c => ({
    name: c.name,
    interval: '1m',
    input_series: c.inputs,
    alert_rule_test: c.checks.map(([at, alerts]) => ({ eval_time: at, alertname: alert, exp_alerts: alerts }))
  }))
  writeFileSync(path.join(dir, 'test.yaml'), stringify({ rule_files: ['rules.yaml'], evaluation_interval: '1m', tests }))
  const check = async (rules: unknown[]): Promise<{ code: number; output: string }> => {
    writeFileSync(path.join(dir, 'rules.yaml'), stringify({ groups: rules }))
    const r = await run(PROMTOOL, ['test', 'rules', path.join(dir, 'test.yaml')], { PATH: process.env.PATH })
    return { code: r.code, output: r.stdout + r.stderr }
  }
  const ok = await check(groups)
  t.equal(ok.code, 0, `promtool test rules: ${alert}`, { output: ok.output })
  const silenced = JSON.parse(JSON.stringify(groups)) as Array<{ rules: Rule[] }>
  for (const g of silenced) for (const r of g.rules) if (r.alert === alert) r.expr = 'vector(1) == 0'
  const fails = await check(silenced)
  t.equal(fails.code, 1, `a ${alert} that never fires fails the same cases`)
  t.match(fails.output, `alertname: ${alert}`)
}

t.test('StranglerNewSideErrorsAboveLegacy: new answers 5xx more often than legacy', when, async t => {
  const { groups, byName } = await rulesOf(t)
  const rule = byName.StranglerNewSideErrorsAboveLegacy
  const on = (context: string, value: string): object => firing(rule, { namespace: NAMESPACE, context }, value)
  await replay(t, groups, rule.alert, [
    {
      name: 'new fails 10% where legacy never does (legacy has no 5xx series at all)',
      inputs: [
        series('strangler_requests_total', 'context="orders", side="new", code="2xx"', '0+540x20'),
        series('strangler_requests_total', 'context="orders", side="new", code="5xx"', '0+60x20'),
        series('strangler_requests_total', 'context="orders", side="legacy", code="2xx"', '0+600x20')
      ],
      checks: [['3m', []], ['12m', [on('orders', '10%')]]]
    },
    {
      name: 'both sides fail alike: an outage of everything is not new\'s fault',
      inputs: [
        series('strangler_requests_total', 'context="orders", side="new", code="2xx"', '0+540x20'),
        series('strangler_requests_total', 'context="orders", side="new", code="5xx"', '0+60x20'),
        series('strangler_requests_total', 'context="orders", side="legacy", code="2xx"', '0+540x20'),
        series('strangler_requests_total', 'context="orders", side="legacy", code="5xx"', '0+60x20')
      ],
      checks: [['12m', []]]
    },
    {
      name: 'new fails every request but sees one a minute: below minNewSideRate',
      inputs: [series('strangler_requests_total', 'context="orders", side="new", code="5xx"', '0+1x20')],
      checks: [['12m', []]]
    }
  ])
})

t.test('StranglerFallbackRateHigh: a dead or failing new service hidden by fallback, not a few fallbacks', when, async t => {
  const { groups, byName } = await rulesOf(t)
  const rule = byName.StranglerFallbackRateHigh
  const on = (context: string, value: string): object => firing(rule, { namespace: NAMESPACE, context }, value)
  await replay(t, groups, rule.alert, [
    {
      name: 'a dead new service at weight 100, beside a healthy context',
      inputs: [
        series('strangler_fallbacks_total', 'context="orders", reason="refused"', '0+60x20'),
        series('strangler_upstream_errors_total', 'context="orders", side="new", reason="refused"', '0+60x20'),
        series('strangler_requests_total', 'context="orders", side="legacy", code="2xx"', '0+60x20'),
        series('strangler_requests_total', 'context="carts", side="new", code="2xx"', '0+600x20')
      ],
      checks: [['4m', []], ['12m', [on('orders', '100%')]]]
    },
    {
      name: 'one request in ten sent to new times out',
      inputs: [
        series('strangler_fallbacks_total', 'context="orders", reason="timeout"', '0+60x20'),
        series('strangler_requests_total', 'context="orders", side="new", code="2xx"', '0+540x20'),
        series('strangler_requests_total', 'context="orders", side="legacy", code="2xx"', '0+600x20')
      ],
      checks: [['12m', [on('orders', '10%')]]]
    },
    {
      name: 'one request in 200 falls back: under the 1% threshold',
      inputs: [
        series('strangler_fallbacks_total', 'context="orders", reason="reset"', '0+60x20'),
        series('strangler_requests_total', 'context="orders", side="new", code="2xx"', '0+11940x20')
      ],
      checks: [['12m', []], ['20m', []]]
    },
    {
      name: 'every request falls back, but one a minute is below minNewSideRate',
      inputs: [
        series('strangler_fallbacks_total', 'context="orders", reason="refused"', '0+1x20'),
        series('strangler_requests_total', 'context="orders", side="legacy", code="2xx"', '0+1x20')
      ],
      checks: [['12m', []], ['20m', []]]
    }
  ])
  // Why it exists: the 5xx alert cannot see a dead new service behind fallback.
  await replay(t, groups, 'StranglerNewSideErrorsAboveLegacy', [{
    name: 'a dead new service behind fallback gives new no 5xx',
    inputs: [
      series('strangler_fallbacks_total', 'context="orders", reason="refused"', '0+60x20'),
      series('strangler_requests_total', 'context="orders", side="legacy", code="2xx"', '0+60x20'),
      series('strangler_requests_total', 'context="carts", side="new", code="5xx"', '0+60x20')
    ],
    checks: [['12m', [firing(byName.StranglerNewSideErrorsAboveLegacy, { namespace: NAMESPACE, context: 'carts' }, '100%')]]]
  }])
})

t.test('StranglerConfigReloadFailed: for as long as the refused file is there, resolved by the next good reload', when, async t => {
  const { groups, byName } = await rulesOf(t)
  const rule = byName.StranglerConfigReloadFailed
  const pod = `${FULLNAME}-1`
  await replay(t, groups, rule.alert, [
    {
      name: 'a bad file at minute 5, still there at minute 45, fixed at minute 50',
      inputs: [
        series('strangler_config_last_reload_successful', '', '1x4 0x45 1x10', pod),
        series('strangler_config_last_reload_successful', '', '1x60')
      ],
      checks: [['3m', []], ['6m', [firing(rule, { namespace: NAMESPACE, job: `${FULLNAME}-admin`, pod })]], ['45m', [firing(rule, { namespace: NAMESPACE, job: `${FULLNAME}-admin`, pod })]], ['55m', []]]
    }
  ])
})

t.test('StranglerPodsServeDifferentConfigs: two hashes live for longer than a rollout', when, async t => {
  const { groups, byName } = await rulesOf(t)
  const rule = byName.StranglerPodsServeDifferentConfigs
  await replay(t, groups, rule.alert, [
    {
      name: 'one pod never took the new ConfigMap',
      inputs: [
        series('strangler_config_info', 'hash="aaaaaaaaaaaa"', '1x40', `${FULLNAME}-0`),
        series('strangler_config_info', 'hash="bbbbbbbbbbbb"', '1x40', `${FULLNAME}-1`)
      ],
      checks: [['10m', []], ['20m', [firing(rule, { namespace: NAMESPACE }, '2')]]]
    },
    {
      name: 'a rollout that converges in 5 minutes',
      inputs: [
        series('strangler_config_info', 'hash="aaaaaaaaaaaa"', '1x40', `${FULLNAME}-0`),
        series('strangler_config_info', 'hash="bbbbbbbbbbbb"', '1x5 _x35', `${FULLNAME}-1`),
        series('strangler_config_info', 'hash="aaaaaaaaaaaa"', '_x5 1x35', `${FULLNAME}-1`)
      ],
      checks: [['20m', []], ['40m', []]]
    }
  ])
})

t.test('StranglerWeightOverridden: an operator\'s or guard\'s override that outlives weightDriftFor, never a ramp', when, async t => {
  const { groups, byName } = await rulesOf(t)
  const rule = byName.StranglerWeightOverridden
  const labels = { namespace: NAMESPACE, job: `${FULLNAME}-admin`, pod: `${FULLNAME}-0`, context: 'orders' }
  await replay(t, groups, rule.alert, [
    {
      name: 'a rollback left in place for three hours',
      inputs: [
        series('strangler_context_overridden', 'context="orders"', '0x10 1x200'),
        series('strangler_context_weight_percent', 'context="orders", source="config"', '50x210'),
        series('strangler_context_weight_percent', 'context="orders", source="effective"', '50x10 0x200')
      ],
      checks: [['1h', []], ['2h30m', [firing(rule, labels)]]]
    },
    {
      name: 'a ramp at 10% of a weight-0 context for three hours',
      inputs: [
        series('strangler_context_overridden', 'context="orders"', '0x210'),
        series('strangler_context_weight_percent', 'context="orders", source="config"', '0x210'),
        series('strangler_context_weight_percent', 'context="orders", source="effective"', '10x210')
      ],
      checks: [['2h30m', []], ['3h', []]]
    }
  ])
})

t.test('StranglerStateStoreDown (with state.redis): a pod that cannot reach Redis for a minute', when, async t => {
  const { groups, byName } = await rulesOf(t, ['--set', 'state.redis.existingSecret=shop-redis'])
  const rule = byName.StranglerStateStoreDown
  await replay(t, groups, rule.alert, [
    {
      name: 'Redis gone at minute 5',
      inputs: [series('strangler_state_store_up', '', '1x4 0x20')],
      checks: [['5m', []], ['8m', [firing(rule, { namespace: NAMESPACE, job: `${FULLNAME}-admin`, pod: `${FULLNAME}-0` })]]]
    },
    {
      name: 'a blip shorter than a minute',
      inputs: [series('strangler_state_store_up', '', '1x4 0 1x20')],
      checks: [['5m', []], ['7m', []]]
    }
  ])
})

t.test('every alert of the chart is replayed above', when, async t => {
  const { byName } = await rulesOf(t, ['--set', 'state.redis.existingSecret=shop-redis'])
  t.strictSame(Object.keys(byName).sort(), [
    'StranglerConfigReloadFailed', 'StranglerFallbackRateHigh', 'StranglerNewSideErrorsAboveLegacy',
    'StranglerPodsServeDifferentConfigs', 'StranglerStateStoreDown', 'StranglerWeightOverridden'
  ])
})
