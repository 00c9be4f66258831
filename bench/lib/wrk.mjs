// One wrk run (-t1) with bench/lib/mix.lua, whose summary line (BENCH_JSON) is parsed.
import { fileURLToPath } from 'node:url'
import { run } from './procs.mjs'

const MIX = fileURLToPath(new URL('mix.lua', import.meta.url))

/** wrk's counts for `seconds` of `connections` against `url` with the request mix `mix`, plus rps and errors. */
export async function wrk (url, seconds, connections, mix) {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '-s', MIX, url, '--', mix, '10000']
  const r = await run('wrk', args)
  const line = r.out.split('\n').find(l => l.startsWith('BENCH_JSON '))
  if (r.code !== 0 || !line) throw new Error(`wrk ${args.join(' ')} failed (${r.code}): ${r.out}${r.err}`)
  const s = JSON.parse(line.slice('BENCH_JSON '.length))
  s.rps = s.requests / (s.durationUs / 1e6)
  s.errors = s.connectErrors + s.readErrors + s.writeErrors + s.statusErrors + s.timeouts
  return s
}
