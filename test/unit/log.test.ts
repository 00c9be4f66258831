import { PassThrough } from 'node:stream'
import t from 'tap'
import { createLogger, logLevel } from '../../src/log.ts'

function capture (env: NodeJS.ProcessEnv, tty: boolean): { log: ReturnType<typeof createLogger>; text: () => string } {
  const out = new PassThrough()
  const chunks: Buffer[] = []
  out.on('data', (c: Buffer) => chunks.push(c))
  return { log: createLogger(env, tty, out), text: () => Buffer.concat(chunks).toString() }
}

t.test('JSON lines with an ISO timestamp when not on a terminal', async t => {
  const { log, text } = capture({}, false)
  log.info({ context: 'orders' }, 'proxy listening')
  const entry = JSON.parse(text())
  t.match(entry.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  t.equal(entry.level, 30)
  t.equal(entry.msg, 'proxy listening')
  t.equal(entry.context, 'orders')
  t.equal(entry.name, 'strangler')
})

t.test('readable text on a terminal', async t => {
  const { log, text } = capture({}, true)
  log.warn({ context: 'orders' }, 'reload failed')
  const line = text()
  t.match(line, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] WARN: reload failed\n {4}context: "orders"\n$/)
})

t.test('LOG_LEVEL filters, case-insensitively; an unknown level is refused', async t => {
  const { log, text } = capture({ LOG_LEVEL: 'WARN' }, false)
  log.info('hidden')
  log.warn('shown')
  t.strictSame(text().trim().split('\n').map(l => JSON.parse(l).msg), ['shown'])
  t.equal(logLevel({ LOG_LEVEL: 'debug' }), 'debug')
  t.equal(logLevel({}), 'info')
  t.equal(logLevel({ LOG_LEVEL: 'verbose' }), null)
})
