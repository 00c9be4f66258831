import { readFileSync } from 'node:fs'
import { Script } from 'node:vm'
import t from 'tap'
import { configFile, get, proxy, routes, serveProcess, upstream } from '../helpers.ts'

/*
 * The board's script is src/admin/board/browser.ts. The page loads it with a
 * classic <script defer>, so what /board.js sends must be a script: an
 * `export {}` or a module wrapper (what tsc emits for a file it takes for a
 * module) would stop the whole board with a SyntaxError.
 */

t.test('/board.js is browser.ts compiled to a classic script, the same from the sources and from dist/', async t => {
  const legacy = await upstream(t, 'legacy')
  const yaml = routes({ legacy: legacy.url, new: legacy.url, weight: 0 })
  const fromSources = await get(`http://127.0.0.1:${(await proxy(t, yaml)).adminPort}/board.js`)
  t.equal(fromSources.status, 200)
  t.equal(fromSources.headers['content-type'], 'text/javascript; charset=utf-8')
  t.doesNotThrow(() => new Script(fromSources.body, { filename: 'board.js' }), 'parses as a classic script')
  t.match(fromSources.body, /^'use strict';\n\(function \(\) \{$/m, 'strict, and all of it inside one function: nothing global')
  t.notMatch(fromSources.body, /\bexport\b\s*\{|\bexports\b|sourceMappingURL|: BoardRow/, 'no module syntax, no source map comment, no types left')
  t.match(readFileSync(new URL('../../src/admin/board/browser.ts', import.meta.url), 'utf8'), /^\/\/\/ <reference lib="dom" \/>/, 'the source is TypeScript checked against the DOM library')

  const { until } = serveProcess(t, configFile(t, yaml), ['--no-watch'])
  const started = await until('proxy listening')
  const fromDist = await get(`http://${started.admin}/board.js`)
  t.equal(fromDist.headers['content-security-policy'], fromSources.headers['content-security-policy'])
  t.equal(fromDist.headers['cache-control'], 'no-store')
  t.equal(fromDist.body, fromSources.body, 'npm run build compiles it exactly as the sources are served')
})
