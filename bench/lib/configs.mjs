// Config files for every target, written into the run's temp dir.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** 60 bytes, the body of every upstream response. */
export const BODY = '{"service":"upstream","ok":true,"pad":"0123456789abcdefgh"}\n'

const strangerServer = (dir, extra) => [
  'server:',
  '  listen: 127.0.0.1:0',
  '  admin: 127.0.0.1:0',
  '  adminToken: bench-token',
  `  stateFile: ${join(dir, 'state.json')}`,
  ...extra.map(line => `  ${line}`),
  'upstreams:'
]

/**
 * Every feature on: two contexts at weight 50, sticky on x-user-id, stripPrefix
 * on the new side, two upstream origins. Metrics are always on. `rescue` adds
 * `fallback: true` and a shadow of 25% of legacy's requests (no noise learning)
 * to both contexts: the per-request cost of the two features that send a
 * request to a second upstream. `weight` 0 sends every request to legacy: one
 * upstream pool, as the Node ceiling has.
 */
export function strangler2 (dir, file, [portA, portB], { workers, rescue = false, weight = 50 } = {}) {
  const lines = [
    ...strangerServer(dir, workers === undefined ? [] : [`workers: ${workers}`]),
    `  legacy: { url: 'http://127.0.0.1:${portA}' }`,
    `  new: { url: 'http://127.0.0.1:${portB}' }`,
    'default: legacy',
    'contexts:'
  ]
  for (const name of ['orders', 'carts']) {
    lines.push(
      `  ${name}:`,
      `    match: { paths: [/api/${name}] }`,
      '    legacy: legacy',
      '    new: new',
      `    weight: ${weight}`,
      '    sticky: { header: x-user-id }',
      '    rewrite: { new: { stripPrefix: /api } }',
      ...(rescue ? ['    fallback: true', '    shadow: { percent: 25, learnNoise: 0 }'] : [])
    )
  }
  const path = join(dir, file)
  writeFileSync(path, `${lines.join('\n')}\n`)
  return path
}

/**
 * `count` contexts: cI owns /c/I, weight 50, sticky on x-user-id; one in four
 * also strips /c on the new side. One flow mapping per context, short names and
 * rewrite on a quarter of them: with rewrite on all, 10,000 contexts exceed the
 * 1 MiB config file limit (1.27 MB). `weight` varies the file for reloads.
 */
export function stranglerMany (dir, file, [portA, portB], count, weight = 50) {
  const lines = [
    ...strangerServer(dir, []),
    `  l: { url: 'http://127.0.0.1:${portA}' }`,
    `  n: { url: 'http://127.0.0.1:${portB}' }`,
    'default: l',
    'contexts:'
  ]
  for (let i = 0; i < count; i++) {
    const rewrite = i % 4 === 0 ? ',rewrite: {new: {stripPrefix: /c}}' : ''
    lines.push(`  c${i}: {match: {paths: [/c/${i}]},legacy: l,new: n,weight: ${weight},sticky: {header: x-user-id}${rewrite}}`)
  }
  const path = join(dir, file)
  writeFileSync(path, `${lines.join('\n')}\n`)
  return path
}

export function nginxUpstream (dir, [portA, portB]) {
  const path = join(dir, 'nginx-upstream.conf')
  writeFileSync(path, `worker_processes 1;
pid ${join(dir, 'nginx-upstream.pid')};
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  server {
    listen 127.0.0.1:${portA};
    listen 127.0.0.1:${portB};
    location / {
      default_type application/json;
      return 200 '${BODY.trimEnd()}\n';
    }
  }
}
`)
  return path
}

export function nginxProxy (dir, port, upstreamPort) {
  const path = join(dir, 'nginx-proxy.conf')
  writeFileSync(path, `worker_processes 1;
pid ${join(dir, 'nginx-proxy.pid')};
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream up {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`)
  return path
}

export function haproxy (dir, port, upstreamPort) {
  const path = join(dir, 'haproxy.cfg')
  writeFileSync(path, `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  server up 127.0.0.1:${upstreamPort}
`)
  return path
}
