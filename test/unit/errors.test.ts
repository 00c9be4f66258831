import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { UsageError } from '../../src/cli/admin-client.ts'
import { errorBody, errorJSON, errors, StartError, StranglerError, StoreUnavailableError } from '../../src/errors.ts'
import { loadConfigFile } from '../../src/config/index.ts'
import { compileTable } from '../../src/routing/table.ts'
import { FileStore } from '../../src/state/store.ts'
import type { Config } from '../../src/types.ts'

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

t.test('every code of the registry is documented in the README, and no two kinds answer with one code and different statuses', async t => {
  const undocumented = Object.values(errors).map(e => e.code).filter(code => !README.includes(`\`${code}\``))
  t.strictSame(undocumented, [])
  const statuses = new Map<string, Set<number>>()
  for (const e of Object.values(errors)) if ('status' in e) statuses.set(e.code, (statuses.get(e.code) ?? new Set()).add(e.status))
  t.strictSame([...statuses].filter(([, s]) => s.size > 1).map(([code]) => code), [])
})

t.test('a data-plane body and an admin body have the one shape', async t => {
  t.equal(errorBody(errors.UPSTREAM_BUSY), '{"statusCode":503,"status":503,"code":"STRANGLER_UPSTREAM_BUSY","message":"The service behind this proxy is busy; retry later."}')
  t.strictSame(errorJSON(new StranglerError(errors.STATE_STORE_DOWN, ['the shared state store redis://r:6379 is unreachable'])), {
    statusCode: 503,
    status: 503,
    code: 'STRANGLER_STATE_STORE_DOWN',
    message: 'Not applied on any replica: the shared state store redis://r:6379 is unreachable. Replicas keep serving with the overrides they have. Retry once the store is back (strangler_state_store_up), or change the weight in the YAML.'
  })
})

t.test('thrown errors carry their code', async t => {
  const start = new StartError(['routes.yaml:1:1 bad'])
  t.ok(start instanceof StranglerError)
  t.strictSame([start.code, start.errors, start.message], ['STRANGLER_CONFIG_INVALID', ['routes.yaml:1:1 bad'], 'invalid config:\nroutes.yaml:1:1 bad'])
  const down = new StoreUnavailableError('the shared state store redis://r:6379 is unreachable')
  t.ok(down instanceof StranglerError)
  t.strictSame([down.code, down.message], ['STRANGLER_STATE_STORE_DOWN', 'the shared state store redis://r:6379 is unreachable'])
  const usage = new UsageError('expected OLD NEW')
  t.ok(usage instanceof StranglerError)
  t.strictSame([usage.code, usage.message], ['STRANGLER_USAGE', 'expected OLD NEW'])

  const dir = mkdtempSync(join(tmpdir(), 'strangler-errors-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'state.json')
  writeFileSync(file, '{"version": 2}')
  await t.rejects(new FileStore(file).load(), { code: 'STRANGLER_STATE_FILE_INVALID', message: 'not a strangler state file (expected {"version": 1, "overrides": {...}})' })

  writeFileSync(join(dir, 'routes.yaml'), 'server: { listen: 127.0.0.1:0, admin: 127.0.0.1:0 }\nupstreams: { monolith: { url: "http://127.0.0.1:1" } }\ndefault: monolith\ncontexts: {}\n')
  const config = loadConfigFile(join(dir, 'routes.yaml'), { env: {}, unsetVars: 'error' }).config as Config
  t.ok(config !== null)
  t.throws(() => compileTable({ ...config, default: 'nowhere' }), { code: 'STRANGLER_TABLE_INVALID' })
})
