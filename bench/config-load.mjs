// Reading and validating the benchmark's 10,000-context file on each path of
// src/config/parse.ts, in turn in one process: the quick path (js-yaml, what a
// valid file takes) and yaml's Document (what a file with an error, or with
// anchors, tags, multi-line strings…, takes). Wall and CPU time, so that a
// busy machine can still be read.
//   npm run build && node bench/config-load.mjs [REPS]
import { mkdtempSync, readFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { configHash } from '../dist/config/hash.js'
import { parseWithDocument, quickConfig } from '../dist/config/parse.js'
import { stranglerMany } from './lib/configs.mjs'

const reps = Number(process.argv[2] ?? '7')
const file = stranglerMany(mkdtempSync(join(os.tmpdir(), 'config-load-')), 'many.yaml', [8081, 8082], 10_000)
const text = readFileSync(file, 'utf8')
const opts = { env: {}, unsetVars: 'error' }

const cpuMs = () => {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}
const paths = {
  'quick path (js-yaml)': () => quickConfig(text, file, opts.env, configHash(text)),
  'yaml Document': () => parseWithDocument(text, file, opts, configHash(text)).config
}
const times = Object.fromEntries(Object.keys(paths).map(k => [k, { wall: [], cpu: [] }]))
for (let r = 0; r < reps; r++) {
  for (const [name, run] of Object.entries(paths)) {
    const t = performance.now()
    const c = cpuMs()
    if (run() === null) throw new Error(`${name}: the file did not validate`)
    times[name].cpu.push(cpuMs() - c)
    times[name].wall.push(performance.now() - t)
  }
}
const median = a => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]
console.log(`10,000 contexts, ${text.length} bytes, ${reps} runs each, load average ${os.loadavg().map(l => l.toFixed(2)).join(' ')}`)
for (const [name, { wall, cpu }] of Object.entries(times)) {
  console.log(`${name.padEnd(22)} wall median ${median(wall).toFixed(0)} ms (min ${Math.min(...wall).toFixed(0)}), CPU median ${median(cpu).toFixed(0)} ms (min ${Math.min(...cpu).toFixed(0)})`)
}
