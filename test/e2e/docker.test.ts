import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { builtinModules } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { parseDocument } from 'yaml'

// No Docker engine runs on our machines: these tests read the Dockerfile, then
// replay it outside Docker (each stage in a temporary directory standing for its
// filesystem) and start the image's CMD the way the container would.

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'))

interface Instruction { op: string; args: string; line: number }
interface Stage { name: string | null; from: string; instructions: Instruction[] }

/** Instructions with continuation lines joined; comments (and parser directives) dropped. */
function instructions (text: string): Instruction[] {
  const out: Instruction[] = []
  let pending = ''
  let start = 0
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (pending === '' && (line === '' || line.startsWith('#'))) return
    if (pending === '') start = i + 1
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `
      return
    }
    const whole = pending + line
    pending = ''
    const [op, ...rest] = whole.split(/\s+/)
    out.push({ op: op.toUpperCase(), args: rest.join(' '), line: start })
  })
  return out
}

function stagesOf (text: string): { args: Record<string, string>; stages: Stage[] } {
  const args: Record<string, string> = {}
  const stages: Stage[] = []
  for (const ins of instructions(text)) {
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args) as RegExpExecArray
      const from = m[1].replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => args[a ?? b as string] ?? '')
      stages.push({ name: m[2] ?? null, from, instructions: [] })
    } else if (stages.length === 0) {
      if (ins.op === 'ARG') {
        const [name, value = ''] = ins.args.split('=')
        args[name] = value
      }
    } else {
      stages[stages.length - 1].instructions.push(ins)
    }
  }
  return { args, stages }
}

const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')
const { stages } = stagesOf(dockerfile)
const final = stages[stages.length - 1]
const ops = (stage: Stage, op: string): Instruction[] => stage.instructions.filter(i => i.op === op)

/** .dockerignore rules, in order; the last rule matching a path (or one of its parents) decides. */
const ignoreRules = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n')
  .map(l => l.trim()).filter(l => l !== '' && !l.startsWith('#'))
  .map(l => {
    const negated = l.startsWith('!')
    const pattern = path.posix.normalize((negated ? l.slice(1) : l).replace(/^\/+/, ''))
    const source = pattern.split(/(\*\*\/?|\*|\?)/).map(part =>
      part === '**/' || part === '**' ? '.*' : part === '*' ? '[^/]*' : part === '?' ? '[^/]' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&')
    ).join('')
    return { negated, pattern, re: new RegExp(`^${source}$`) }
  })

function ignored (rel: string): boolean {
  const parts = rel.split('/')
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'))
  let out = false
  for (const rule of ignoreRules) if (candidates.some(c => rule.re.test(c))) out = !rule.negated
  return out
}

/** `COPY [--flag=value]... SRC... DEST`, exec (JSON) form too. */
function copyArgs (args: string): { from: string | null; srcs: string[]; dest: string } {
  const words = args.startsWith('[') ? JSON.parse(args) as string[] : args.split(/\s+/)
  let from: string | null = null
  while (words[0].startsWith('--')) {
    const flag = words.shift() as string
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length)
  }
  return { from, srcs: words.slice(0, -1), dest: words[words.length - 1] }
}

t.test('two stages on a current Node LTS, slim or distroless: build, then run', async t => {
  t.ok(stages.length >= 2, 'multi-stage')
  const image = /^(node:(22|24)(\.\d+){0,2}-(\w+-)?slim|gcr\.io\/distroless\/nodejs(22|24)-debian\d+(:[\w.-]+)?)(@sha256:[0-9a-f]{64})?$/
  for (const stage of stages) {
    t.match(stage.from, image, `FROM ${stage.from}${stage.name !== null ? ` AS ${stage.name}` : ''}`)
  }
  const build = stages.find(s => s.name === 'build') as Stage
  t.ok(build, 'a stage named build')
  const runs = ops(build, 'RUN').flatMap(r => r.args.split('&&').map(c => c.trim()))
  t.ok(runs.some(c => /^npm ci\b/.test(c)), 'npm ci')
  t.ok(runs.some(c => c === 'npm run build'), 'npm run build (tsc)')
  t.ok(runs.some(c => /^npm prune --omit=dev\b/.test(c)), 'dev dependencies pruned')
  t.not(final.name, 'build')
  t.strictSame(ops(final, 'RUN').filter(r => /\bnpm (ci|install|run)\b/.test(r.args)), [], 'the runtime stage builds nothing')
})

t.test('the runtime stage runs as a numeric non-root user, exec-form CMD, ports 8080 and 9090', async t => {
  const users = ops(final, 'USER')
  t.ok(users.length > 0, 'USER is set')
  const user = users[users.length - 1].args
  t.match(user, /^[1-9]\d*(:[1-9]\d*)?$/, 'numeric, so that Kubernetes runAsNonRoot can verify it')
  t.strictSame(ops(final, 'ENTRYPOINT'), [], 'no ENTRYPOINT: the CMD is the whole command')
  const cmds = ops(final, 'CMD')
  t.equal(cmds.length, 1)
  t.strictSame(JSON.parse(cmds[0].args), ['node', 'dist/cli.js', 'serve', '--config', '/etc/strangler/routes.yaml'], 'exec form: node is PID 1 and gets SIGTERM')
  t.strictSame(ops(final, 'EXPOSE').flatMap(e => e.args.split(/\s+/)).sort(), ['8080', '9090'])
  t.strictSame(ops(final, 'WORKDIR').map(w => w.args), ['/app'])
})

t.test('.dockerignore keeps dependencies, build output, history and tests out of the context', async t => {
  for (const p of ['node_modules', 'node_modules/fastify/package.json', 'dist', 'dist/cli.js', '.git', '.git/HEAD', 'test', 'bench', '.tap', 'coverage']) {
    t.ok(ignored(p), `${p} is ignored`)
  }
  for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src/cli.ts', 'config/routes.yaml']) {
    t.notOk(ignored(p), `${p} is sent`)
  }
})

t.test('every COPY source exists: in the build context, or made by the stage it is copied from', async t => {
  const produced = new Map<string, Set<string>>()
  for (const stage of stages) {
    let workdir = '/'
    const made = new Set<string>()
    for (const ins of stage.instructions) {
      if (ins.op === 'WORKDIR') workdir = path.posix.resolve(workdir, ins.args)
      if (ins.op === 'RUN') {
        if (/\bnpm ci\b/.test(ins.args)) made.add(path.posix.join(workdir, 'node_modules'))
        if (/\bnpm run build\b/.test(ins.args)) made.add(path.posix.join(workdir, JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8')).compilerOptions.outDir))
      }
      if (ins.op !== 'COPY') continue
      const { from, srcs, dest } = copyArgs(ins.args)
      const target = path.posix.resolve(workdir, dest)
      for (const src of srcs) {
        if (from === null) {
          t.ok(existsSync(path.join(ROOT, src)), `line ${ins.line}: ${src} exists`)
          t.notOk(ignored(path.posix.normalize(src)), `line ${ins.line}: ${src} is not in .dockerignore`)
          made.add(dest.endsWith('/') || srcs.length > 1 ? path.posix.join(target, path.posix.basename(src)) : target)
        } else {
          t.ok(produced.get(from)?.has(src), `line ${ins.line}: ${src} is made in stage ${from}`)
          made.add(target)
        }
      }
    }
    if (stage.name !== null) produced.set(stage.name, made)
  }
})

/** Every package a built file imports, by name (node: builtins left out). */
function importsOf (dir: string): Set<string> {
  const out = new Set<string>()
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.js')) continue
    const code = readFileSync(path.join(entry.parentPath, entry.name), 'utf8')
    for (const m of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)['"]([^'"]+)['"]/g)) {
      const spec = m[1]
      if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || builtinModules.includes(spec)) continue
      out.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0])
    }
  }
  return out
}

interface Replayed { root: (stage: Stage) => string; workdir: Map<Stage, string>; env: Record<string, string> }

/**
 * Replays the Dockerfile with each stage's filesystem in a directory. RUN lines
 * are run when they can be, stood in for when they would download (npm ci links
 * the checkout's node_modules, installed from the same lockfile), and the test
 * fails on any it does not know.
 */
async function replay (t: Test, base: string): Promise<Replayed> {
  const roots = new Map<string, string>()
  const workdir = new Map<Stage, string>()
  const env: Record<string, string> = {}
  const root = (stage: Stage): string => path.join(base, `stage-${stages.indexOf(stage)}`)
  for (const stage of stages) {
    mkdirSync(root(stage), { recursive: true })
    if (stage.name !== null) roots.set(stage.name, root(stage))
    let wd = '/'
    const at = (p: string): string => path.join(root(stage), path.posix.resolve(wd, p))
    for (const ins of stage.instructions) {
      if (ins.op === 'WORKDIR') {
        wd = path.posix.resolve(wd, ins.args)
        mkdirSync(at('.'), { recursive: true })
      } else if (ins.op === 'ENV' && stage === final) {
        for (const pair of ins.args.split(/\s+/)) {
          const [k, v] = pair.split('=')
          env[k] = v
        }
      } else if (ins.op === 'COPY') {
        const { from, srcs, dest } = copyArgs(ins.args)
        for (const src of srcs) {
          const source = from === null ? path.join(ROOT, src) : path.join(roots.get(from) as string, path.posix.resolve('/', src))
          const target = dest.endsWith('/') || srcs.length > 1 ? path.join(at(dest), path.basename(src)) : at(dest)
          mkdirSync(path.dirname(target), { recursive: true })
          cpSync(source, target, { recursive: true, filter: s => from !== null || !ignored(path.relative(ROOT, s).split(path.sep).join('/')) })
        }
      } else if (ins.op === 'RUN') {
        for (const command of ins.args.split('&&').map(c => c.trim())) {
          if (/^npm ci\b/.test(command)) {
            t.ok(existsSync(at('package-lock.json')), `line ${ins.line}: npm ci has the lockfile`)
            symlinkSync(path.join(ROOT, 'node_modules'), at('node_modules'), 'dir')
          } else if (/^npm run [\w:-]+$/.test(command)) {
            const script = command.split(' ')[2]
            const r = await new Promise<{ code: number; output: string }>(resolve => {
              execFile('npm', ['run', '--silent', script], { cwd: at('.') }, (err, stdout, stderr) => {
                resolve({ code: err === null ? 0 : 1, output: stdout + stderr })
              })
            })
            t.equal(r.code, 0, `line ${ins.line}: ${command}`, { output: r.output })
          } else if (/^npm prune --omit=dev\b/.test(command)) {
            // Would prune the checkout's node_modules: the imports test checks what it leaves.
          } else if (/^mkdir -p( \S+)+$/.test(command)) {
            for (const dir of command.split(/\s+/).slice(2)) mkdirSync(at(dir), { recursive: true })
          } else if (/^chown \S+ \S+$/.test(command)) {
            t.ok(existsSync(at(command.split(/\s+/)[2])), `line ${ins.line}: ${command}: the path exists`)
          } else {
            t.fail(`line ${ins.line}: docker.test.ts does not know how to replay "${command}" outside Docker`)
          }
        }
      }
    }
    workdir.set(stage, wd)
  }
  return { root, workdir, env }
}

function get (url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode as number, body }))
    }).on('error', reject)
  })
}

t.test('the image, replayed outside Docker: it builds, serves /healthz on its config, and exits 0 on SIGTERM', async t => {
  const base = mkdtempSync(path.join(os.tmpdir(), 'strangler-docker-'))
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  const image = await replay(t, base)
  const fs = image.root(final)
  const cwd = path.join(fs, image.workdir.get(final) as string)

  t.ok(existsSync(path.join(cwd, 'dist/cli.js')), 'dist/cli.js is in the image')
  const imagePkg = path.join(cwd, 'package.json')
  t.equal(existsSync(imagePkg) && JSON.parse(readFileSync(imagePkg, 'utf8')).type, 'module', 'package.json is in the image and makes dist/ ESM')
  const deps = new Set(Object.keys(pkg.dependencies))
  t.strictSame([...importsOf(path.join(cwd, 'dist'))].filter(name => !deps.has(name)), [], 'dist/ imports only production dependencies: npm prune --omit=dev keeps them')

  // The image's config, bound to ephemeral ports on loopback; its state file where the image made room for it.
  const [command, ...args] = JSON.parse(ops(final, 'CMD')[0].args) as string[]
  t.equal(command, 'node')
  const argv = args.map(a => a.startsWith('/') ? path.join(fs, a) : a)
  const configFile = argv[argv.indexOf('--config') + 1]
  const config = parseDocument(readFileSync(configFile, 'utf8'))
  config.setIn(['server', 'listen'], '127.0.0.1:0')
  config.setIn(['server', 'admin'], '127.0.0.1:0')
  t.ok(existsSync(path.join(fs, 'var/lib/strangler')) && statSync(path.join(fs, 'var/lib/strangler')).isDirectory(), 'the image has /var/lib/strangler for runtime overrides')
  config.setIn(['server', 'stateFile'], path.join(fs, 'var/lib/strangler/state.json'))
  writeFileSync(configFile, config.toString())

  const child = spawn(process.execPath, argv, { cwd, env: { PATH: process.env.PATH, ...image.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const exited = once(child, 'exit')
  const logs: Array<Record<string, any>> = []
  const listening = await new Promise<Record<string, any> | null>(resolve => {
    createInterface({ input: child.stdout }).on('line', line => {
      const entry = JSON.parse(line)
      logs.push(entry)
      if (entry.msg === 'proxy listening') resolve(entry)
    })
    void exited.then(() => resolve(null))
  })
  if (listening === null) return t.fail('the image\'s command exited before listening', { stderr })
  t.match(listening, { listen: /^127\.0\.0\.1:\d+$/, admin: /^127\.0\.0\.1:\d+$/ })
  t.strictSame(await get(`http://${listening.admin}/healthz`), { status: 200, body: '{"status":"ok"}' })
  t.strictSame(await get(`http://${listening.admin}/readyz`), { status: 200, body: '{"status":"ready"}' })

  child.kill('SIGTERM')
  const [code, signal] = await exited
  t.strictSame({ code, signal }, { code: 0, signal: null }, 'drained and exited 0', { stderr })
  t.ok(logs.some(l => l.msg === 'shutting down' && l.signal === 'SIGTERM'))
})
