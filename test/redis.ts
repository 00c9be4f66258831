import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { tempDir } from './helpers.ts'

export interface RedisServer {
  /** The `server.state.redis.url` of this server. */
  url: string
  /** A client for the test's own reads and writes. */
  client: () => Redis
  stop: () => Promise<void>
  /** Starts it again on the same socket, empty (no persistence), as after a crash. */
  start: () => Promise<void>
}

/**
 * A real redis-server (installed by .ci/run) on a Unix socket in a fresh
 * temporary directory: no port to race for. Stopped at teardown.
 */
export async function redisServer (t: Test): Promise<RedisServer> {
  const socket = path.join(tempDir(t), 'redis.sock')
  let child: ChildProcess | null = null
  const clients: Redis[] = []
  async function start (): Promise<void> {
    const c = spawn('redis-server', ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] })
    child = c
    const lines = createInterface({ input: c.stdout as NodeJS.ReadableStream })
    await new Promise<void>((resolve, reject) => {
      c.once('error', reject)
      c.once('exit', code => reject(new Error(`redis-server exited with code ${code} before it was ready`)))
      lines.on('line', line => { if (/ready to accept connections/i.test(line)) resolve() })
    })
  }
  async function stop (): Promise<void> {
    const c = child
    child = null
    if (c === null || c.exitCode !== null) return
    await new Promise<void>(resolve => {
      c.once('exit', () => resolve())
      c.kill('SIGKILL')
    })
  }
  await start()
  t.teardown(async () => {
    for (const c of clients) c.disconnect()
    await stop()
  })
  return {
    url: `unix://${socket}`,
    client: () => {
      const c = new Redis(socket)
      clients.push(c)
      return c
    },
    stop,
    start
  }
}
