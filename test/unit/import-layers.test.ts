import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import ts from 'typescript'

const SRC = fileURLToPath(new URL('../../src/', import.meta.url))

/** Every .ts file under src/, as a path relative to it, with the src/ files it imports (static, re-exported or dynamic). */
function importGraph (): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  const files = (readdirSync(SRC, { recursive: true }) as string[]).filter(f => f.endsWith('.ts')).map(f => f.split('\\').join('/'))
  for (const file of files) {
    const info = ts.preProcessFile(readFileSync(join(SRC, file), 'utf8'), true, true)
    const targets = info.importedFiles.map(i => i.fileName).filter(name => name.startsWith('.'))
      .map(name => relative(SRC, resolve(SRC, dirname(file), name)).split('\\').join('/'))
    graph.set(file, [...new Set(targets)].sort())
  }
  return graph
}

/** The strongly connected components with more than one member (or a self-import): each is an import cycle. */
function cycles (graph: Map<string, string[]>): string[][] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  const visit = (v: string): void => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number))
    }
    if (low.get(v) !== index.get(v)) return
    const scc: string[] = []
    let w: string
    do {
      w = stack.pop() as string
      onStack.delete(w)
      scc.push(w)
    } while (w !== v)
    if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(scc.sort())
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return found.sort()
}

/** A file's layer: its top folder under src/ (`admin/board/x.ts` is in `admin`), or the file itself at the top. */
function layer (file: string): string {
  const slash = file.indexOf('/')
  return slash < 0 ? file : file.slice(0, slash)
}

function layerGraph (graph: Map<string, string[]>): Map<string, string[]> {
  const out = new Map<string, Set<string>>()
  for (const [file, targets] of graph) {
    const from = layer(file)
    const set = out.get(from) ?? new Set<string>()
    for (const target of targets) if (layer(target) !== from) set.add(layer(target))
    out.set(from, set)
  }
  return new Map([...out].map(([k, v]) => [k, [...v].sort()]))
}

const graph = importGraph()

t.test('the import graph was read: src/ has files and they import each other', async t => {
  t.ok(graph.size > 50, `${graph.size} files`)
  t.ok(graph.get('control.ts')?.includes('types.ts'), 'control.ts imports types.ts')
})

t.test('no file in src/ imports itself through a chain of imports', async t => {
  t.strictSame(cycles(graph), [])
})

t.test('no folder of src/ depends on another that depends back on it', async t => {
  t.strictSame(cycles(layerGraph(graph)), [])
})

/** Leaves: the types and the error registry import nothing from src/, so anything may import them. */
const LEAVES = ['types.ts', 'errors.ts']

t.test('types.ts and errors.ts import nothing from src/', async t => {
  t.strictSame(LEAVES.map(f => graph.get(f)), [[], []])
})

t.test('routing/ imports nothing outside routing/ but the leaves: the decisions stay pure', async t => {
  const outside: string[] = []
  for (const [file, targets] of graph) {
    if (layer(file) !== 'routing') continue
    for (const target of targets) if (layer(target) !== 'routing' && !LEAVES.includes(target)) outside.push(`${file} -> ${target}`)
  }
  t.strictSame(outside, [])
})

t.test('only state/ and the wiring (control.ts: storeFor) know the Redis store; the others use its interfaces', async t => {
  const knowing: string[] = []
  for (const [file, targets] of graph) {
    if (layer(file) === 'state' || file === 'control.ts') continue
    for (const target of targets) if (target.endsWith('redis-store.ts')) knowing.push(`${file} -> ${target}`)
  }
  t.strictSame(knowing, [])
})

t.test('admin/ is HTTP only: no override store or override rules live in it', async t => {
  const kept = [...graph.keys()].filter(f => layer(f) === 'admin' && /(^|\/)(overrides|override-rules|store|redis-store)\.ts$/.test(f))
  t.strictSame(kept, [])
})
