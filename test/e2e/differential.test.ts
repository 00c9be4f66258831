import { writeFileSync } from 'node:fs'
import t from 'tap'
import { cases, type Outcome } from '../differential/cases.ts'
import { proxy } from '../helpers.ts'
import { startNginx } from '../nginx.ts'
import { ok, scriptedUpstream, type ScriptedUpstream } from '../raw-upstream.ts'
import { received, talk } from '../wire.ts'

/*
 * The same corpus of edge cases through strangler-proxy and through nginx, in
 * front of the same byte-logging upstream (one per case, so that no case sees
 * another's connections). Each case pins strangler-proxy's outcome exactly,
 * and nginx's: the same, or the difference README's "Where we differ from
 * nginx" lists with its reason.
 *
 * nginx is configured as the streaming proxy strangler-proxy is (no request or
 * response buffering, no body size limit) and sets the same forwarding headers,
 * so what differs is behaviour, not configuration. Normalised away: Date and
 * Server, the Connection/Keep-Alive fields (whether a connection stays usable
 * is measured instead, by a request sent after the answers), the case and order
 * of differently named fields, and the upstream's port.
 */

const probe = (prefix: string): string => `GET ${prefix}/probe HTTP/1.1\r\nHost: h.example\r\nConnection: close\r\n\r\n`

const NGINX_COMMON = `
  proxy_http_version 1.1;
  proxy_set_header Upgrade $http_upgrade;
  proxy_set_header Connection $connection_upgrade;
  proxy_set_header X-Forwarded-For $remote_addr;
  proxy_set_header X-Forwarded-Host $http_host;
  proxy_set_header X-Forwarded-Proto $scheme;
  proxy_set_header Forwarded "";
  proxy_set_header X-Real-IP "";
  proxy_set_header X-Forwarded-Port "";
  proxy_set_header X-Forwarded-Prefix "";
  proxy_request_buffering off;
  proxy_buffering off;
  client_max_body_size 0;
  # after an error nginx reads what the client still sends for this long before closing (default 5s): only a delay
  lingering_timeout 50ms;`

/** Our side of a case's `uri`: `/orders/` is nginx's `location /cN/ { proxy_pass …/orders/; }`. */
function rewriteOf (uri: string | undefined, i: number): string {
  if (uri === undefined) return ''
  const add = uri.replace(/\/$/, '')
  return `, rewrite: { legacy: { stripPrefix: /c${i}${add === '' ? '' : `, addPrefix: ${add}`} } }`
}

t.test('strangler-proxy and nginx, case by case', async t => {
  const upstreams: ScriptedUpstream[] = []
  for (const c of cases) {
    // A rewritten case's upstream sees the probe under its own path.
    upstreams.push(await scriptedUpstream(t, (req, nth) => req.line.includes('/probe ') ? ok('probe') : c.reply(req, nth)))
  }
  const fallback = await scriptedUpstream(t, () => ok('default'))
  // A short drain: at teardown, connections some cases leave open (nginx's HTTP/0.9 pass-through) need not be waited for.
  const p = await proxy(t, `server:
  listen: 127.0.0.1:0
  admin: 127.0.0.1:0
  drainTimeout: 200ms
upstreams:
  d: { url: "${fallback.url}" }
${upstreams.map((u, i) => `  c${i}: { url: "${u.url}" }`).join('\n')}
default: d
contexts:
${upstreams.map((_u, i) => `  c${i}: { match: { paths: [/c${i}] }, legacy: c${i}, new: c${i}, weight: 0${rewriteOf(cases[i].uri, i)} }`).join('\n')}
`)
  // Connection "" except for upgrades: nginx's usual WebSocket setup.
  const nginx = await startNginx(t, `
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  server {
    listen 127.0.0.1:PORT;
${NGINX_COMMON}
${upstreams.map((u, i) => cases[i].uri === undefined
  ? `    location /c${i}/ { proxy_pass ${u.url}; }`
  : `    location /c${i}/ {\n${NGINX_COMMON.replace('X-Forwarded-Prefix ""', `X-Forwarded-Prefix /c${i}`)}\n      proxy_pass ${u.url}${cases[i].uri};\n    }`).join('\n')}
    location / { proxy_pass ${fallback.url}; }
  }`)

  const dump: Record<string, { strangler: Outcome; nginx: Outcome }> = {}
  for (const [i, c] of cases.entries()) {
    const prefix = `/c${i}`
    const u = upstreams[i]
    const run = async (port: number): Promise<Outcome> => {
      const mark = u.requests.length
      const r = await talk(port, c.request.replaceAll('/P/', `${prefix}/`), { finals: c.finals ?? 1, methods: c.methods ?? ['GET'], after: c.after, probe: probe(prefix) })
      const upstream = u.requests.slice(mark).filter(q => !q.line.includes('/probe ')).map(q => received(q).replaceAll(`127.0.0.1:${u.port}`, 'UP'))
      // A proxy's own port appears where nginx makes a mapped Location absolute (absolute_redirect, port_in_redirect).
      return { client: r.responses.map(l => l.replaceAll(prefix, '/P').replaceAll(`127.0.0.1:${u.port}`, 'UP').replaceAll(`h.example:${port}/`, 'h.example:PROXY/')), open: r.open, upstream: upstream.map(l => l.replaceAll(prefix, '/P')) }
    }
    if (process.env.DIFF_ONLY !== undefined && !c.name.includes(process.env.DIFF_ONLY)) continue
    const ours = await run(p.proxyPort)
    const theirs = await run(nginx.port)
    if (process.env.DIFF_DUMP !== undefined) {
      dump[c.name] = { strangler: ours, nginx: theirs }
      continue
    }
    t.test(c.name, async t => {
      t.same(ours, c.expect, 'strangler-proxy')
      t.same(theirs, c.nginx ?? c.expect, c.nginx === undefined ? 'nginx, the same' : 'nginx, a documented difference')
    })
  }
  if (process.env.DIFF_DUMP !== undefined) writeFileSync(process.env.DIFF_DUMP, JSON.stringify(dump, null, 1))
})
