// The targets bench/hotpath.mjs and bench/sampled.mjs measure, each a node
// command line and a test of its ready line that returns the port it listens on.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The Node ceiling (bench/servers/node-undici.mjs); `forwarding`: it also sends strangler-proxy's four forwarding headers. */
export function ceiling (upstreamPort, forwarding = false) {
  return {
    args: [join(ROOT, 'bench/servers/node-undici.mjs'), `http://127.0.0.1:${upstreamPort}`, ...(forwarding ? ['forwarding'] : [])],
    ready: line => line?.port
  }
}

/** `strangler serve` of the build in `dist` on `configFile`. */
export function strangler (dist, configFile) {
  return {
    args: [join(dist, 'cli.js'), 'serve', '--config', configFile],
    ready: line => line?.msg === 'proxy listening' && Number(line.listen.split(':').pop())
  }
}
