import http from 'node:http'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { Strangler, StartError, startStrangler } from '../main.ts'
import { DEFAULT_CONFIG } from './serve.ts'

export const demoHelp = `Usage: strangler demo [--config FILE]

Starts two small demo upstreams on 127.0.0.1:3001 ("monolith") and
127.0.0.1:3002 ("orders-svc"), each answering with its own name, and the proxy
on the embedded default config (or --config), for a first look. Edit the
config while it runs: the next request follows the change.`

function demoUpstream (name: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const body = `${JSON.stringify({ service: name, method: req.method, path: req.url })}\n`
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve(server))
  })
}

export async function demo (argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true })
  const configFile = path.resolve(values.config ?? DEFAULT_CONFIG)
  const token = process.env.STRANGLER_ADMIN_TOKEN ?? 'demo-token'
  let upstreams: http.Server[]
  try {
    upstreams = await Promise.all([demoUpstream('monolith', 3001), demoUpstream('orders-svc', 3002)])
  } catch (err) {
    process.stderr.write(`demo: cannot start the demo upstreams on ports 3001 and 3002 (${(err as Error).message}); is another demo running?\n`)
    return 1
  }
  let s: Strangler
  try {
    s = await startStrangler({ configFile, env: { ...process.env, STRANGLER_ADMIN_TOKEN: token } })
  } catch (err) {
    for (const u of upstreams) u.close()
    if (err instanceof StartError) {
      process.stderr.write(`${err.errors.join('\n')}\n`)
      return 1
    }
    throw err
  }
  const proxy = `http://${s.proxyAddress}`
  const admin = `http://${s.adminAddress}`
  process.stderr.write(`
strangler-proxy demo
  proxy   ${proxy}
  admin   ${admin}   (token: ${token})
  board   ${admin}/   the migration board: open it in a browser
  legacy  http://127.0.0.1:3001   answers {"service":"monolith"}
  new     http://127.0.0.1:3002   answers {"service":"orders-svc"}
  config  ${configFile}

Send traffic (context "orders" sends 25% of /api/orders and /api/carts to orders-svc):
  for i in $(seq 12); do curl -s ${proxy}/api/orders/1; done
One user always lands on one side (sticky on x-user-id):
  curl -s -H 'x-user-id: alice' ${proxy}/api/orders/1
Flip the weight: set "weight: 100" in ${configFile} and save; the next request follows.
Roll back at once:
  curl -s -X POST -H 'authorization: Bearer ${token}' ${admin}/contexts/orders/rollback
  curl -s ${admin}/status

`)
  process.on('SIGHUP', () => { void s.reload('signal') })
  const stop = (): void => {
    for (const u of upstreams) u.close()
    s.close().then(() => process.exit(0), () => process.exit(1))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  return await new Promise<number>(() => {})
}
