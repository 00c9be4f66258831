// The short version of bench/load-reload.ts: the same code, fewer reloads.
import t from 'tap'
import { reloadUnderLoad, rollbackUnderLoad, type WriteMethod } from '../../bench/load-reload.ts'

// Paced, so that the test leaves room for the files tap runs beside it.
const opts = { concurrency: 8, rate: 1000, answersPerGeneration: 20 }

t.test('30 reloads per way of writing the file, under load: zero failed requests, every answer from a side the config in force allowed', async t => {
  let requests = 0
  for (const method of ['in-place', 'rename', 'symlink'] as WriteMethod[]) {
    await t.test(method, async t => {
      const r = await reloadUnderLoad(method, 30, opts)
      t.equal(r.applied, 30, 'every write was picked up by the watcher and put in force')
      t.equal(r.rejectedReloads, 0, 'no reload read a half-written file')
      t.same(r.failures, {}, 'no request failed')
      t.same(r.violations, [], 'no answer came from a side that no generation in force during the request allowed')
      t.equal(r.bySide.legacy + r.bySide.new, r.requests)
      t.ok(r.bySide.legacy > 0 && r.bySide.new > 0, `both sides served: ${JSON.stringify(r.bySide)}`)
      // 31 generations, each with at least 20 requests sent and answered inside it
      t.equal(r.confined.length, 31)
      t.ok(r.confined.every(n => n >= 20), 'load overlapped every generation')
      requests += r.requests
    })
  }
  t.ok(requests >= 2000, `${requests} requests in all`)
})

t.test('rollbacks under load: no request sent after the admin call returned reaches the new side', async t => {
  const r = await rollbackUnderLoad(25, opts)
  t.equal(r.reachedNewAfterRollback, 0)
  t.ok(r.sentAfterRollback >= 25 * 20, `${r.sentAfterRollback} requests were sent after a rollback returned and answered before the next call`)
  t.same(r.violations, [], 'clearing the override is observed as promptly: everything sent after it returns goes to new')
  t.same(r.failures, {}, 'no request failed')
  // each cycle: a rolled-back and a cleared generation, each with at least 20 requests inside it
  t.ok(r.requests >= 25 * 2 * 20, `${r.requests} requests`)
})
