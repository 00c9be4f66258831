// Child processes of the benchmark: each target runs in its own process group,
// so its memory and CPU can be read from /proc and the whole group (nginx's
// workers, a cluster's workers) is stopped together, even when the harness fails.
import { spawn } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import net from 'node:net'

const children = new Set()
/** Short-lived commands (wrk, nginx -v): killed too if the harness stops while they run. */
const transient = new Set()

/** Spawns `cmd args` in a new process group; stdout/stderr are kept (tail) for diagnostics. */
export function start (name, cmd, args, opts = {}) {
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...opts })
  const proc = { name, child, pid: child.pid, out: '', err: '', exited: null, lines: [] }
  children.add(proc)
  const keep = (key, chunk) => {
    proc[key] += chunk
    if (proc[key].length > 200_000) proc[key] = proc[key].slice(-100_000)
  }
  child.stdout.setEncoding('utf8').on('data', chunk => {
    keep('out', chunk)
    for (const waiter of [...proc.lines]) waiter()
  })
  child.stderr.setEncoding('utf8').on('data', chunk => keep('err', chunk))
  proc.done = new Promise(resolve => {
    child.on('exit', (code, signal) => {
      proc.exited = { code, signal }
      children.delete(proc)
      for (const waiter of [...proc.lines]) waiter()
      resolve(proc.exited)
    })
    child.on('error', err => {
      proc.exited = { code: -1, signal: null, error: err.message }
      children.delete(proc)
      for (const waiter of [...proc.lines]) waiter()
      resolve(proc.exited)
    })
  })
  return proc
}

/** Resolves with the first stdout line (parsed as JSON when it is) that `test` accepts. */
export function waitForLine (proc, test, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`${proc.name}: no ready line within ${timeoutMs} ms\nstdout: ${proc.out.slice(-2000)}\nstderr: ${proc.err.slice(-2000)}`)), timeoutMs)
    const check = () => {
      for (const line of proc.out.split('\n')) {
        let value = line
        try { value = JSON.parse(line) } catch {}
        if (line !== '' && test(value)) return finish(null, value)
      }
      if (proc.exited !== null) finish(new Error(`${proc.name} exited (${JSON.stringify(proc.exited)}) before it was ready\nstdout: ${proc.out.slice(-2000)}\nstderr: ${proc.err.slice(-2000)}`))
    }
    function finish (err, value) {
      clearTimeout(timer)
      proc.lines = proc.lines.filter(w => w !== check)
      if (err) reject(err)
      else resolve(value)
    }
    proc.lines.push(check)
    check()
  })
}

/** SIGTERM to the group, SIGKILL after `graceMs`. */
export async function stop (proc, graceMs = 5000) {
  if (proc.exited !== null) return proc.exited
  signalGroup(proc.pid, 'SIGTERM')
  const timer = setTimeout(() => signalGroup(proc.pid, 'SIGKILL'), graceMs)
  const result = await proc.done
  clearTimeout(timer)
  signalGroup(proc.pid, 'SIGKILL') // stragglers left in the group (workers of a killed master)
  return result
}

function signalGroup (pid, signal) {
  try { process.kill(-pid, signal) } catch {}
}

export async function stopAll () {
  for (const c of transient) c.kill('SIGKILL')
  await Promise.all([...children].map(p => stop(p)))
}

/** Last resort, synchronous (for process 'exit'): kill every group still alive. */
export function killAllNow () {
  for (const c of transient) c.kill('SIGKILL')
  for (const p of children) signalGroup(p.pid, 'SIGKILL')
}

/** Runs a command to completion; resolves with { code, out, err }. */
export function run (cmd, args, opts = {}) {
  return new Promise(resolve => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
    transient.add(child)
    child.on('exit', () => transient.delete(child))
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', c => { out += c })
    child.stderr.setEncoding('utf8').on('data', c => { err += c })
    child.on('error', e => resolve({ code: -1, out, err: err + e.message }))
    child.on('exit', code => resolve({ code, out, err }))
  })
}

/** A port free right now on 127.0.0.1, for servers that cannot report the port they bound (nginx, haproxy). */
export function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/** pid and all its descendants. */
export function processTree (pid) {
  const parentOf = new Map()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = readStat(Number(entry))
    if (stat !== null) parentOf.set(Number(entry), stat.ppid)
  }
  const tree = [pid]
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of parentOf) if (parent === tree[i]) tree.push(child)
  }
  return tree.filter(p => parentOf.has(p))
}

function readStat (pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) }
  } catch {
    return null
  }
}

const CLK_TCK = 100

/** CPU seconds (user + system) used so far by the process tree. */
export function cpuSeconds (pid) {
  let ticks = 0
  for (const p of processTree(pid)) ticks += readStat(p)?.ticks ?? 0
  return ticks / CLK_TCK
}

/** Peak resident set (VmHWM) and current one (VmRSS) of each process in the tree, in MiB. */
export function peakRss (pid) {
  const per = []
  for (const p of processTree(pid)) {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8')
      const hwm = /VmHWM:\s+(\d+) kB/.exec(status)
      const rss = /VmRSS:\s+(\d+) kB/.exec(status)
      if (hwm) per.push({ pid: p, mib: Number(hwm[1]) / 1024, nowMib: rss ? Number(rss[1]) / 1024 : NaN })
    } catch {}
  }
  return per
}

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** CPU seconds used by the whole machine so far (all cores, user + system + irq, not idle or iowait). */
export function machineBusySeconds () {
  const [, ...f] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/)
  const [user, nice, system, , , irq, softirq, steal] = f.map(Number)
  return (user + nice + system + irq + softirq + (steal || 0)) / CLK_TCK
}

/** CPU seconds of this process plus its children that have exited (wrk, the latency generator). */
export function harnessSeconds () {
  const text = readFileSync('/proc/self/stat', 'utf8')
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK
}

/** Read and write system calls (read/readv/write/writev, sockets included) made so far by the process tree. */
export function syscalls (pid) {
  let reads = 0
  let writes = 0
  for (const p of processTree(pid)) {
    try {
      const io = readFileSync(`/proc/${p}/io`, 'utf8')
      reads += Number(/syscr: (\d+)/.exec(io)?.[1] ?? 0)
      writes += Number(/syscw: (\d+)/.exec(io)?.[1] ?? 0)
    } catch {}
  }
  return { reads, writes }
}
