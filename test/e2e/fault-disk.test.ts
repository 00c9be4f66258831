import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, mkdtempSync, openSync, readFileSync, rmdirSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { Strangler, startStrangler } from '../../src/main.ts'
import { admin, configFile, recordingLog, routes, tempDir, upstream, whoAnswers } from '../helpers.ts'

const TOKEN = 'disk-token'

function mount (dir: string): boolean {
  return spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=700', 'tmpfs', dir]).status === 0
}

/** A real filesystem that fills up: a 64 KiB tmpfs mounted for the test (root only, as in CI). */
function smallDisk (t: Test): string {
  const dir = tempDir(t)
  if (!mount(dir)) throw new Error(`could not mount a tmpfs on ${dir}`)
  t.teardown(() => {
    spawnSync('umount', [dir])
    rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

/** Writes a file on `dir` until the filesystem answers ENOSPC; returns a function that frees the space again. */
function fill (dir: string): () => void {
  const filler = path.join(dir, 'filler')
  const fd = openSync(filler, 'w')
  try {
    for (;;) writeSync(fd, Buffer.alloc(4096, 1))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
  } finally {
    closeSync(fd)
  }
  return () => unlinkSync(filler)
}

const probe = mkdtempSync(path.join(os.tmpdir(), 'strangler-mount-'))
const mountable = mount(probe) && spawnSync('umount', [probe]).status === 0
rmdirSync(probe)
const when = { skip: mountable ? false : 'mounting a tmpfs is not permitted here (it needs root, as in CI)' }

t.test('on a full disk, clearing an override answers persisted: false with a warning, and a restart brings it back as warned', when, async t => {
  const disk = smallDisk(t)
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const file = configFile(t, routes({ legacy: legacy.url, new: next.url, weight: 100, server: `  adminToken: ${TOKEN}\n  stateFile: ${disk}/state.json` }))
  const { log, lines } = recordingLog()
  const start = (): Promise<Strangler> => startStrangler({ configFile: file, env: {}, log, watch: false, processMetrics: false })
  const first = await start()
  const rolled = await admin(first, 'POST', '/contexts/orders/rollback', { token: TOKEN, body: { reason: 'INC-11' } })
  t.equal(rolled.json.persisted, true)

  const free = fill(disk)
  const cleared = await admin(first, 'DELETE', '/contexts/orders/override', { token: TOKEN })
  t.equal(cleared.status, 200)
  t.equal(cleared.json.effectiveWeight, 100, 'cleared now')
  t.equal(cleared.json.persisted, false)
  t.equal(cleared.json.warning, `The override is cleared now but that could not be saved (${disk}/state.json: ENOSPC: no space left on device, write); after a restart it applies again until it is cleared.`)
  t.equal(await whoAnswers(`http://127.0.0.1:${first.proxyPort}/api/orders`), 'new')
  t.match((await admin(first, 'GET', '/status')).json.state, { up: false, lastError: /ENOSPC/ })
  t.match((await admin(first, 'GET', '/metrics')).text, /^strangler_state_store_up 0$/m)
  t.match(lines.find(l => l.level === 50 && l.context === 'orders'), { change: 'clear', msg: 'the override of orders is cleared but that could not be saved: after a restart it applies again' })
  t.same(JSON.parse(readFileSync(`${disk}/state.json`, 'utf8')).overrides.orders.reason, 'INC-11', 'the file still holds the rollback')
  await first.close()

  const second = await start()
  t.teardown(() => second.close())
  t.equal(second.overrides.get('orders')?.reason, 'INC-11', 'back after the restart, as the answer warned')
  free()
  const again = await admin(second, 'DELETE', '/contexts/orders/override', { token: TOKEN })
  t.equal(again.json.persisted, true)
  t.equal(again.json.warning, undefined)
  t.same(JSON.parse(readFileSync(`${disk}/state.json`, 'utf8')).overrides, {})
})

t.test('on a full disk, a rollback, a ttl lapse and a YAML change each report that they were not saved', when, async t => {
  const disk = smallDisk(t)
  const legacy = await upstream(t, 'legacy')
  const next = await upstream(t, 'new')
  const yaml = (weight: number): string => routes({ legacy: legacy.url, new: next.url, weight, server: `  adminToken: ${TOKEN}\n  stateFile: ${disk}/state.json` })
  const file = configFile(t, yaml(100))
  const { log, lines } = recordingLog()
  const s = await startStrangler({ configFile: file, env: {}, log, watch: false, processMetrics: false })
  t.teardown(() => s.close())
  const lapsed = once(s.overrides, 'dropped')
  t.equal((await admin(s, 'POST', '/contexts/orders/rollback', { token: TOKEN, body: { ttl: '1s' } })).json.persisted, true)

  fill(disk)
  await lapsed
  t.match(lines.filter(l => l.level === 50).map(l => ({ context: l.context, change: l.change, msg: l.msg })), [
    { context: 'orders', change: 'drop', msg: 'the override of orders ended but that could not be saved: the state file still holds it, and a restart drops it again' }
  ], 'the lapse was not saved, and the log says so')

  const rollback = await admin(s, 'POST', '/contexts/orders/rollback', { token: TOKEN })
  t.equal(rollback.json.persisted, false)
  t.match(rollback.json.warning, 'will not survive a restart')
  writeFileSync(file, yaml(50))
  t.equal((await s.reload('admin')).ok, true)
  t.equal(s.overrides.get('orders'), null, 'the YAML wins')
  t.same(lines.filter(l => l.level === 50).map(l => l.change), ['drop', 'set', 'drop'], 'the rollback and the clearing by the YAML were not saved either, and each was logged')
})
