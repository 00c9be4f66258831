import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import net, { type AddressInfo } from 'node:net'
import path from 'node:path'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'
import { tempDir } from './helpers.ts'

export interface Nginx {
  port: number
  /** What nginx logged (stderr, notice level and up): for a failing test's message. */
  log: string[]
}

/** A port free a moment ago: nginx cannot listen on port 0 and tell us which it got. */
async function freePort (): Promise<number> {
  const s = net.createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>(resolve => s.close(() => resolve()))
  return port
}

/**
 * The Debian nginx (installed by .ci/run) in one process (`master_process off`),
 * its config, logs, pid and temp files in a fresh temporary directory, so it
 * runs as root without touching /var. `http` is the inside of the `http {}`
 * block; `PORT` in it is replaced by the listening port.
 *
 * The port is chosen by binding port 0 and releasing it, so another process
 * can take it before nginx binds: only then (nginx logs "Address already in
 * use") is it started again on another port. Ready means nginx logged its
 * rlimits, which it does after its listening sockets are open.
 */
export async function startNginx (t: Test, http: string): Promise<Nginx> {
  const dir = tempDir(t)
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(dir, sub))
  for (;;) {
    const port = await freePort()
    const conf = path.join(dir, 'nginx.conf')
    writeFileSync(conf, `daemon off;
master_process off;
error_log stderr notice;
pid ${dir}/nginx.pid;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${http.replaceAll('PORT', String(port))}
}
`)
    const child = spawn('/usr/sbin/nginx', ['-p', dir, '-e', 'stderr', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
    const log: string[] = []
    const outcome = await new Promise<'ready' | 'in use'>((resolve, reject) => {
      child.once('error', reject)
      child.once('exit', code => reject(new Error(`nginx exited with code ${code} before it was ready:\n${log.join('\n')}`)))
      createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', line => {
        log.push(line)
        if (line.includes('getrlimit(')) resolve('ready')
        if (line.includes('Address already in use')) resolve('in use')
      })
    })
    if (outcome === 'ready') {
      t.teardown(() => stop(child))
      return { port, log }
    }
    await stop(child)
  }
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  await exited
}
