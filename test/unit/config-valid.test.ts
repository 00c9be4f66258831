import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { configHash, formatIssue, loadConfigFile, parseConfig, parseDuration } from '../../src/config/index.ts'
import type { Config, Upstream } from '../../src/types.ts'

const fixtures = fileURLToPath(new URL('../fixtures/config/', import.meta.url))
const opts = { env: { STRANGLER_ADMIN_TOKEN: 's3cret' }, unsetVars: 'error' as const }

function upstreams (list: Upstream[]): Record<string, Upstream> {
  return Object.assign(Object.create(null), Object.fromEntries(list.map(u => [u.name, u])))
}

t.test('the example of DESIGN.md parses into the exact Config, defaults filled in', async t => {
  const file = path.join(fixtures, 'design-example.yaml')
  const result = loadConfigFile(file, opts)
  t.strictSame(result.errors, [])
  t.strictSame(result.warnings, [])
  const expected: Config = {
    file,
    hash: result.config?.hash ?? '',
    server: {
      listen: { host: '0.0.0.0', port: 8080 },
      admin: { host: '127.0.0.1', port: 9090 },
      adminToken: 's3cret',
      boardAuth: false,
      trustProxy: ['10.0.0.0/8'],
      stateFile: '/var/lib/strangler/state.json',
      state: null,
      accessLog: false,
      accessLogQuery: false,
      drainTimeoutMs: 30_000,
      workers: 1,
      headersTimeoutMs: 30_000,
      requestTimeoutMs: 300_000,
      maxHeaderBytes: 16_384,
      maxBodyBytes: 0,
      underscoreHeaders: 'drop'
    },
    upstreams: upstreams([
      { name: 'monolith', origin: 'http://monolith.internal:8080', basePath: '', host: 'monolith.internal:8080', timeoutMs: 30_000, bodyTimeoutMs: 300_000, preserveHost: false, maxConnections: 64, queueTimeoutMs: 10_000 },
      { name: 'orders-svc', origin: 'http://orders.internal:3000', basePath: '', host: 'orders.internal:3000', timeoutMs: 10_000, bodyTimeoutMs: 300_000, preserveHost: false, maxConnections: 64, queueTimeoutMs: 10_000 }
    ]),
    default: 'monolith',
    contexts: [{
      name: 'orders',
      paths: ['/api/orders', '/api/carts'],
      hosts: ['shop.example.com'],
      methods: ['GET', 'POST'],
      legacy: 'monolith',
      new: 'orders-svc',
      weight: 25,
      sticky: { header: 'x-user-id' },
      rewrite: { new: { stripPrefix: '/api' } },
      shadow: null,
      fallback: null,
      guard: null,
      ramp: null
    }]
  }
  t.strictSame(result.config, expected)
  t.match(result.config?.hash, /^[0-9a-f]{12}$/)
})

t.test('a minimal config gets every default', async t => {
  const text = 'upstreams:\n  app:\n    url: http://app\ndefault: app\n'
  const result = parseConfig(text, '/etc/strangler/routes.yaml', opts)
  t.strictSame(result.config, {
    file: '/etc/strangler/routes.yaml',
    hash: configHash(text),
    server: {
      listen: { host: '0.0.0.0', port: 8080 },
      admin: { host: '127.0.0.1', port: 9090 },
      adminToken: null,
      boardAuth: false,
      trustProxy: [],
      stateFile: '/etc/strangler/strangler-state.json',
      accessLog: false,
      accessLogQuery: false,
      drainTimeoutMs: 30_000,
      workers: 1,
      headersTimeoutMs: 30_000,
      requestTimeoutMs: 300_000,
      maxHeaderBytes: 16_384,
      maxBodyBytes: 0,
      underscoreHeaders: 'drop',
      state: null
    },
    upstreams: upstreams([{ name: 'app', origin: 'http://app', basePath: '', host: 'app', timeoutMs: 30_000, bodyTimeoutMs: 300_000, preserveHost: false, maxConnections: 64, queueTimeoutMs: 10_000 }]),
    default: 'app',
    contexts: []
  })
})

t.test('every optional field set', async t => {
  const text = `server:
  listen: "[::]:8443"
  admin: LOCALHOST:9091
  adminToken: ""
  boardAuth: true
  trustProxy: [192.0.2.7, "fd00::/8", "::1"]
  stateFile: state/overrides.json
  accessLog: true
  drainTimeout: 1m30s
  state:
    redis: { url: "rediss://strangler:pw@redis.example.com:6380/2", keyPrefix: "shop:" }
upstreams:
  legacy:
    url: HTTPS://Legacy.Example.com:443/base/v1/
    timeout: 250ms
    bodyTimeout: 1h
    preserveHost: true
    maxConnections: 8
    queueTimeout: 1.5s
  next: { url: "http://[::1]:3000" }
default: legacy
contexts:
  reads:
    match:
      paths: [/]
      hosts: ["*.Example.com", api.example.com]
      methods: [get, head]
    legacy: legacy
    new: next
    weight: 0.5
    sticky: { cookie: Session_ID }
    rewrite:
      legacy: { addPrefix: /v1 }
      new: {}
  writes:
    match: { paths: [/] , hosts: ["*.example.com"] }
    legacy: legacy
    new: next
    weight: 100
`
  const result = parseConfig(text, 'deploy/routes.yaml', opts)
  t.strictSame(result.errors.map(formatIssue), [])
  const config = result.config as Config
  t.strictSame(config.server, {
    listen: { host: '::', port: 8443 },
    admin: { host: 'localhost', port: 9091 },
    adminToken: null,
    boardAuth: true,
    trustProxy: ['192.0.2.7', 'fd00::/8', '::1'],
    stateFile: path.resolve('deploy/state/overrides.json'),
    accessLog: true,
    accessLogQuery: false,
    drainTimeoutMs: 90_000,
    workers: 1,
    headersTimeoutMs: 30_000,
    requestTimeoutMs: 300_000,
    maxHeaderBytes: 16_384,
    maxBodyBytes: 0,
    underscoreHeaders: 'drop',
    state: { redis: { url: 'rediss://strangler:pw@redis.example.com:6380/2', keyPrefix: 'shop:' } }
  })
  t.strictSame(config.upstreams, upstreams([
    { name: 'legacy', origin: 'https://legacy.example.com:443', basePath: '/base/v1', host: 'legacy.example.com:443', timeoutMs: 250, bodyTimeoutMs: 3_600_000, preserveHost: true, maxConnections: 8, queueTimeoutMs: 1500 },
    { name: 'next', origin: 'http://[::1]:3000', basePath: '', host: '[::1]:3000', timeoutMs: 30_000, bodyTimeoutMs: 300_000, preserveHost: false, maxConnections: 64, queueTimeoutMs: 10_000 }
  ]))
  t.strictSame(config.contexts, [
    {
      name: 'reads',
      paths: ['/'],
      hosts: ['*.example.com', 'api.example.com'],
      methods: ['GET', 'HEAD'],
      legacy: 'legacy',
      new: 'next',
      weight: 0.5,
      sticky: { cookie: 'Session_ID' },
      rewrite: { legacy: { addPrefix: '/v1' }, new: {} },
      shadow: null,
      fallback: null,
      guard: null,
      ramp: null
    },
    { name: 'writes', paths: ['/'], hosts: ['*.example.com'], methods: null, legacy: 'legacy', new: 'next', weight: 100, sticky: null, rewrite: {}, shadow: null, fallback: null, guard: null, ramp: null }
  ])
})

t.test('contexts keep file order, even with names a plain object would sort first', async t => {
  const text = `upstreams: { a: { url: "http://a" } }
default: a
contexts:
  zeta: { match: { paths: [/z] }, legacy: a, new: a, weight: 0 }
  "2024": { match: { paths: [/y] }, legacy: a, new: a, weight: 0 }
  "10": { match: { paths: [/x] }, legacy: a, new: a, weight: 0 }
`
  t.strictSame(parseConfig(text, 'r.yaml', opts).config?.contexts.map(c => c.name), ['zeta', '2024', '10'])
})

t.test('upstream names that are also Object.prototype members are plain names', async t => {
  const text = 'upstreams:\n  constructor: { url: "http://a" }\ndefault: toString\n'
  t.strictSame(parseConfig(text, 'r.yaml', opts).errors.map(formatIssue), [
    'r.yaml:3:10 default "toString" is not a declared upstream (declared: constructor)'
  ])
})

t.test('empty server and contexts sections mean the defaults', async t => {
  const text = 'server:\nupstreams: { a: { url: "http://a" } }\ndefault: a\ncontexts:\n'
  const config = parseConfig(text, 'r.yaml', opts).config
  t.equal(config?.server.listen.port, 8080)
  t.strictSame(config?.contexts, [])
})

t.test('an inline config resolves the state file against the working directory', async t => {
  const config = parseConfig('upstreams: { a: { url: "http://a" } }\ndefault: a\n', '<inline>', opts).config
  t.equal(config?.server.stateFile, path.join(process.cwd(), 'strangler-state.json'))
})

t.test('a byte-order mark is hashed but does not shift columns', async t => {
  const text = '\uFEFFupstreams: { a: { url: "http://a" } }\ndefault: a\nbogus: 1\n'
  const result = parseConfig(text, 'r.yaml', opts)
  t.strictSame(result.errors.map(formatIssue), ['r.yaml:3:1 unknown key "bogus" (allowed: server, upstreams, default, contexts)'])
  t.equal(configHash(text), configHash(Buffer.from(text)))
})

t.test('CRLF line endings give the same positions', async t => {
  const text = 'upstreams:\r\n  a: { url: "http://a" }\r\ndefault: b\r\n'
  t.strictSame(parseConfig(text, 'r.yaml', opts).errors.map(formatIssue), ['r.yaml:3:10 default "b" is not a declared upstream (declared: a)'])
})

t.test('formatIssue', async t => {
  t.equal(formatIssue({ file: '/etc/routes.yaml', line: 3, col: 7, message: 'weight must be a number' }), '/etc/routes.yaml:3:7 weight must be a number')
})

t.test('configHash is the first 12 hex digits of SHA-256', async t => {
  t.equal(configHash(''), 'e3b0c44298fc')
  t.equal(configHash('abc'), 'ba7816bf8f01')
})

t.test('parseDuration', async t => {
  const cases: Array<[string, number | null]> = [
    ['250ms', 250], ['10s', 10_000], ['5m', 300_000], ['1h', 3_600_000], ['1.5s', 1500], ['0.5ms', 0.5],
    ['0s', null], ['0.0m', null], ['10', null], ['10 s', null], ['-1s', null], ['.5s', null], ['5.s', null],
    ['1d', null], ['1e3ms', null], ['', null], [' 1s', null], ['1S', null], ['9'.repeat(400) + 'h', null],
    ['1h30m', 5_400_000], ['1m30s', 90_000], ['2h0m5s', 7_205_000], ['1s500ms', 1500], ['1h30m15s250ms', 5_415_250], ['0h1s', 1000],
    ['30m1h', null], ['1m1m', null], ['1h 30m', null], ['0h0m', null], ['1h30', null], ['1ms5s', null]
  ]
  for (const [s, ms] of cases) t.equal(parseDuration(s), ms, s)
})

t.test('loadConfigFile', async t => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strangler-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const write = (name: string, content: string | Buffer): string => {
    const file = path.join(dir, name)
    writeFileSync(file, content)
    return file
  }

  t.test('reads, and resolves a relative stateFile beside the file', async t => {
    const file = write('ok.yaml', 'server: { stateFile: ../state.json }\nupstreams: { a: { url: "http://a" } }\ndefault: a\n')
    const result = loadConfigFile(path.relative(process.cwd(), file), opts)
    t.equal(result.config?.file, file)
    t.equal(result.config?.server.stateFile, path.join(path.dirname(dir), 'state.json'))
  })

  t.test('issues name the file by its absolute path', async t => {
    const file = write('bad.yaml', 'upstreams: { a: { url: "http://a" } }\ndefault: b\n')
    t.strictSame(loadConfigFile(path.relative(process.cwd(), file), opts).errors.map(formatIssue), [
      `${file}:2:10 default "b" is not a declared upstream (declared: a)`
    ])
  })

  t.test('a missing file is one issue at 1:1', async t => {
    const file = path.join(dir, 'missing.yaml')
    t.strictSame(loadConfigFile(file, opts), {
      config: null,
      errors: [{ file, line: 1, col: 1, message: 'cannot read the config file: no such file' }],
      warnings: []
    })
  })

  t.test('a directory is one issue at 1:1', async t => {
    t.strictSame(loadConfigFile(dir, opts).errors.map(formatIssue), [`${dir}:1:1 cannot read the config file: it is a directory`])
  })

  t.test('a file over 1 MiB is refused before parsing', async t => {
    const file = write('big.yaml', Buffer.alloc(1024 * 1024 + 1, 'a'))
    t.strictSame(loadConfigFile(file, opts).errors.map(formatIssue), [`${file}:1:1 config file is 1048577 bytes; the limit is 1048576`])
  })

  t.test('invalid UTF-8 is refused', async t => {
    const file = write('latin1.yaml', Buffer.from('default: caf\xe9\n', 'latin1'))
    t.strictSame(loadConfigFile(file, opts).errors.map(formatIssue), [`${file}:1:1 the config file is not valid UTF-8`])
  })
})
