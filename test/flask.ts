import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'

/**
 * The Debian python3-flask (installed by .ci/run) serving the app in
 * test/fixtures/wsgi/`script`, which prints its port once listening; stopped
 * at teardown. Resolves with its URL.
 */
export async function flaskApp (t: Test, script: string, ...args: string[]): Promise<string> {
  const file = new URL(`fixtures/wsgi/${script}`, import.meta.url).pathname
  const child = spawn('/usr/bin/python3', [file, ...args], { stdio: ['ignore', 'pipe', 'ignore'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const exited = once(child, 'exit').then(([code]) => { throw new Error(`the WSGI app exited with code ${code} before printing its port`) })
  const [line] = await Promise.race([once(createInterface({ input: child.stdout }), 'line'), exited]) as [string]
  return `http://127.0.0.1:${line.trim()}`
}
