import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import t from 'tap'
import { configFile, proxy, routes, upstream, whoAnswers } from '../helpers.ts'

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname
const FIX = 'test/fixtures/cli'

function run (args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? 1, stdout, stderr })
    })
  })
}

t.test('check: exit 0 and a one-line summary on a valid file', async t => {
  const r = await run(['check', `${FIX}/old.yaml`])
  t.equal(r.code, 0)
  t.equal(r.stdout, `${FIX}/old.yaml: valid (3 upstreams, 3 contexts, hash 24da3b488924)\n`)
})

t.test('check: every problem as FILE:LINE:COL message, exit 1', async t => {
  const r = await run(['check', `${FIX}/old.yaml`, `${FIX}/invalid.yaml`])
  t.equal(r.code, 1)
  t.equal(r.stdout, [
    `${FIX}/old.yaml: valid (3 upstreams, 3 contexts, hash 24da3b488924)`,
    `${FIX}/invalid.yaml:5:3 context "orders" is missing required key "weight"`,
    `${FIX}/invalid.yaml:8:10 new "orders-svc" is not a declared upstream (declared: monolith)`,
    `${FIX}/invalid.yaml:9:5 unknown key "wieght" (did you mean "weight"?)`,
    `${FIX}/invalid.yaml: invalid, 3 errors`, ''].join('\n'))
})

t.test('check: an unset ${VAR} warns, and fails with --strict', async t => {
  const loose = await run(['check', `${FIX}/secret.yaml`])
  t.equal(loose.code, 0)
  t.equal(loose.stdout, `${FIX}/secret.yaml:2:15 environment variable STRANGLER_TEST_UNSET_TOKEN is not set (warning)\n${FIX}/secret.yaml: valid (1 upstreams, 0 contexts, hash e11f4789afe7)\n`)
  const strict = await run(['check', '--strict', `${FIX}/secret.yaml`])
  t.equal(strict.code, 1)
  const set = await run(['check', '--strict', `${FIX}/secret.yaml`], { STRANGLER_TEST_UNSET_TOKEN: 'x' })
  t.equal(set.code, 0)
})

t.test('usage errors exit 2; --help exits 0', async t => {
  t.equal((await run(['check'])).code, 2)
  t.equal((await run(['diff', `${FIX}/old.yaml`])).code, 2)
  t.equal((await run(['explain', `${FIX}/old.yaml`, 'GET'])).code, 2)
  t.equal((await run(['rollback'])).code, 2)
  t.equal((await run(['serve', '--bogus'])).code, 2)
  t.equal((await run(['frobnicate'])).code, 2)
  t.equal((await run([])).code, 2)
  for (const c of ['serve', 'check', 'diff', 'explain', 'rollback', 'weight', 'status', 'demo', 'preview-token']) {
    const r = await run([c, '--help'])
    t.equal(r.code, 0, c)
    t.match(r.stdout, `Usage: strangler ${c}`)
  }
})

t.test('diff: weights from → to, sticky users that move, added and removed contexts', async t => {
  const r = await run(['diff', `${FIX}/old.yaml`, `${FIX}/new.yaml`])
  t.equal(r.code, 0)
  t.equal(r.stdout, [
    'CONTEXT   WEIGHT     IMPACT',
    'orders    10% → 35%  25% of its traffic moves legacy → new; 25% of sticky users change side',
    'carts     50% → 20%  30% of its traffic moves new → legacy; match changed',
    'payments  0% → 5%    added at 5% to new',
    'search    (same)     new, shadow changed',
    'upstreams added: payments-svc',
    'upstreams changed: orders-svc', ''].join('\n'))
  const same = await run(['diff', `${FIX}/old.yaml`, `${FIX}/old.yaml`])
  t.equal(same.stdout, 'no traffic change\n')
  const bad = await run(['diff', `${FIX}/old.yaml`, `${FIX}/invalid.yaml`])
  t.equal(bad.code, 1)
})

t.test('explain: context, side and probability, and the path the upstream receives', async t => {
  const sticky = await run(['explain', `${FIX}/new.yaml`, 'GET', 'http://shop/api/orders/7?x=1', '-H', 'x-user-id: alice'])
  t.equal(sticky.stdout, [
    'request   GET /api/orders/7?x=1 (host shop)',
    'context   orders (paths /api/orders; hosts any; methods any)',
    'sticky    header x-user-id = alice: bucket 5260 of 10000; buckets below 3500 go to new',
    'new            0%  orders-svc receives /orders/7?x=1',
    'legacy       100%  monolith receives /api/orders/7?x=1', ''].join('\n'))
  const random = await run(['explain', `${FIX}/old.yaml`, 'get', '/api/orders'])
  t.equal(random.stdout, [
    'request   GET /api/orders',
    'context   orders (paths /api/orders; hosts any; methods any)',
    'sticky    no header x-user-id on this request: the side is drawn at random',
    'new           10%  orders-svc receives /orders',
    'legacy        90%  monolith receives /api/orders', ''].join('\n'))
  const none = await run(['explain', `${FIX}/old.yaml`, 'POST', '/api/carts'])
  t.equal(none.stdout, 'request   POST /api/carts\ncontext   none: the default upstream serves it\nupstream  monolith (http://monolith.internal:8080) receives /api/carts\n')
  const shadow = await run(['explain', `${FIX}/new.yaml`, 'GET', '/search?q=x'])
  t.equal(shadow.stdout, [
    'request   GET /search?q=x',
    'context   search (paths /search; hosts any; methods any)',
    'shadow    when legacy serves it, 12.5% of the time also sent to orders-svc (x-strangler-shadow: 1) and the answers compared',
    'new            0%  orders-svc receives /search?q=x',
    'legacy       100%  monolith receives /search?q=x', ''].join('\n'))
  const bad = await run(['explain', `${FIX}/old.yaml`, 'GET', '/api/%2e%2e/admin'])
  t.equal(bad.stdout, 'GET /api/%2e%2e/admin\nrefused: 400 STRANGLER_BAD_PATH (not a canonical path); no upstream sees it\n')
})

t.test('rollback, weight and status drive a running proxy through the admin API', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 100, server: '  adminToken: ${TOKEN}' }), { env: { TOKEN: 'tok' } })
  const env = { STRANGLER_ADMIN_URL: `http://127.0.0.1:${p.adminPort}`, STRANGLER_ADMIN_TOKEN: 'tok' }
  const rb = await run(['rollback', 'orders', '--reason', 'INC-7'], env)
  t.equal(rb.code, 0)
  t.equal(rb.stdout, 'orders: effective weight 0% to new (configured 100%)\n')
  t.equal(await whoAnswers(`${p.base}/api/orders`), 'legacy')
  const st = await run(['status'], env)
  t.match(st.stdout, new RegExp(`^config ${p.config.hash}, loaded \\S+\\n\\nCONTEXT  CONFIGURED  EFFECTIVE  OVERRIDE\\norders   100%        0%         INC-7 \\(by admin at \\S+\\)\\n$`))
  const w = await run(['weight', 'orders', '12.5', '--ttl', '1h'], env)
  t.equal(w.code, 0)
  t.match(w.stdout, /^orders: effective weight 12\.5% to new \(configured 100%\), until \S+\n$/)
  const bad = await run(['weight', 'orders', '101'], env)
  t.equal(bad.code, 1)
  t.equal(bad.stderr, 'strangler weight: 400 STRANGLER_BAD_WEIGHT "weight" must be from 0 to 100, got 101\n')
  const wrong = await run(['rollback', 'orders'], { ...env, STRANGLER_ADMIN_TOKEN: 'nope' })
  t.equal(wrong.code, 1)
  t.match(wrong.stderr, '401 STRANGLER_UNAUTHORIZED')
  const down = await run(['status', '--admin', 'http://127.0.0.1:1'])
  t.equal(down.code, 1)
  t.match(down.stderr, 'cannot reach the admin API at http://127.0.0.1:1')
})

t.test('--version prints the package version, exit 0', async t => {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  for (const flag of ['--version', '-v']) {
    const r = await run([flag])
    t.equal(r.code, 0, flag)
    t.equal(r.stdout, `strangler-proxy ${version}\n`, flag)
  }
})

t.test('serve: an unknown --log-level or LOG_LEVEL is a usage error, exit 2', async t => {
  const bad = await run(['serve', '--log-level', 'verbose', '--config', `${FIX}/old.yaml`])
  t.equal(bad.code, 2)
  t.match(bad.stderr, 'log level "verbose" is not one of fatal, error, warn, info, debug, trace, silent')
  const env = await run(['serve', '--config', `${FIX}/old.yaml`], { LOG_LEVEL: 'loud' })
  t.equal(env.code, 2)
})

t.test('serve on a terminal logs readable text', async t => {
  const up = await upstream(t, 'legacy')
  const file = configFile(t, routes({ legacy: up.url, new: up.url, weight: 0 }))
  // script(1) gives the process a pseudo-terminal as its standard output. The
  // proxy itself is stopped: killing script would leave it running, since the
  // SIGHUP of the closed terminal makes it reload, not exit.
  const tty = (args: string): Promise<{ out: string; pid: number; killed: boolean }> => new Promise(resolve => {
    const child = execFile('script', ['-qec', `${process.execPath} ${CLI} serve --config ${file} ${args} & echo "pid $!"; wait`, '/dev/null'], { env: { PATH: process.env.PATH } })
    let out = ''
    let pid = 0
    let stopped = false
    let killed = false
    let escalation: NodeJS.Timeout | undefined
    const stop = (): void => {
      if (stopped) return
      stopped = true
      // A proxy that already ended (a refused start) has nothing to stop: script ends with it.
      if (pid === 0) {
        child.kill('SIGKILL')
        return
      }
      try { process.kill(pid, 'SIGTERM') } catch {}
      // One that ignores SIGTERM must not outlive the test (which then fails on `killed`).
      escalation = setTimeout(() => {
        killed = true
        try { process.kill(pid, 'SIGKILL') } catch {}
      }, 10_000)
    }
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString()
      pid = Number(/^pid (\d+)/m.exec(out)?.[1] ?? 0)
      if (/proxy listening|WARN/.test(out)) stop()
    })
    // script exits once the proxy has: its shell waits for it.
    // Stopped when its ready line does not come: a pid freed by its exit is never signalled later.
    const deadline = setTimeout(stop, 10_000)
    child.on('exit', () => {
      clearTimeout(deadline)
      clearTimeout(escalation)
      resolve({ out, pid, killed })
    })
  })
  const { out: text, pid, killed } = await tty('')
  t.match(text, /\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] .*INFO.*: .*proxy listening/)
  t.notMatch(text, /^\{/m, 'no JSON lines')
  t.equal(killed, false, 'the proxy ended on SIGTERM')
  t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the proxy is gone')
})

t.test('status lists dormant overrides: their context is gone from the config, and they apply again if it comes back', async t => {
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const carts = '  carts:\n    match: { paths: [/api/carts] }\n    legacy: monolith\n    new: orders-svc\n    weight: 100'
  const server = '  adminToken: ${TOKEN}'
  const p = await proxy(t, routes({ legacy: legacy.url, new: next.url, weight: 100, server, extra: carts }), { env: { TOKEN: 'tok' } })
  const env = { STRANGLER_ADMIN_URL: `http://127.0.0.1:${p.adminPort}`, STRANGLER_ADMIN_TOKEN: 'tok' }
  t.equal((await run(['rollback', 'carts', '--reason', 'INC-9', '--ttl', '2h'], env)).code, 0)
  writeFileSync(p.file, routes({ legacy: legacy.url, new: next.url, weight: 100, server }))
  t.equal((await p.reload('admin')).ok, true)
  const st = await run(['status'], env)
  t.match(st.stdout, new RegExp(`^config ${p.config.hash}, loaded \\S+\\n\\nCONTEXT  CONFIGURED  EFFECTIVE  OVERRIDE\\norders   100%        100%       -\\n\\n` +
    'DORMANT \\(context not in the config; applies again if it comes back with the same YAML\\)\\n' +
    'carts  0%  INC-9 \\(by admin at \\S+, expires \\S+\\)\\n$'))
})
