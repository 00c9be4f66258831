import { statSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { loadConfigFile } from './load.ts'
import type { ParseOptions, ParseResult } from './parse.ts'

const ENTRY = new URL(import.meta.url.endsWith('.ts') ? './load-worker.ts' : './load-worker.js', import.meta.url)

/** Below this size a file parses in a few milliseconds: in line, no thread. */
export const THREAD_THRESHOLD = 64 * 1024

/**
 * Loads config files on a worker thread when they are large, so that parsing
 * and validating a 10,000-context file (about a second of YAML work) never
 * blocks requests. The thread starts on first use and does not keep the
 * process alive.
 */
export class ConfigLoader {
  #worker: Worker | null = null
  #seq = 0
  readonly #waiting = new Map<number, (r: ParseResult) => void>()

  constructor (private readonly threshold = THREAD_THRESHOLD) {}

  async load (file: string, opts: ParseOptions): Promise<ParseResult> {
    let size = 0
    try {
      size = statSync(file).size
    } catch {}
    if (size < this.threshold) return loadConfigFile(file, opts)
    const worker = this.#worker ?? this.#start()
    const id = ++this.#seq
    return await new Promise(resolve => {
      this.#waiting.set(id, resolve)
      worker.postMessage({ id, file, opts })
    })
  }

  #start (): Worker {
    const worker = new Worker(ENTRY)
    worker.unref()
    worker.on('message', ({ id, result }: { id: number; result: ParseResult }) => {
      const done = this.#waiting.get(id)
      this.#waiting.delete(id)
      if (result.config !== null) {
        // Structured cloning drops the null prototype that lets upstreams be named "constructor".
        result.config.upstreams = Object.assign(Object.create(null), result.config.upstreams)
      }
      // Receiving 10,000 contexts takes tens of milliseconds: let requests in
      // before the reload goes on (an immediate set from an immediate runs
      // after the loop has polled for I/O again).
      setImmediate(() => setImmediate(() => done?.(result)))
    })
    worker.on('error', (err: Error) => this.#fail(err))
    worker.on('exit', () => this.#fail(new Error('the config loader thread exited')))
    this.#worker = worker
    return worker
  }

  #fail (err: Error): void {
    this.#worker = null
    for (const [id, done] of this.#waiting) {
      this.#waiting.delete(id)
      done({ config: null, errors: [{ file: '<loader>', line: 1, col: 1, message: `cannot load the config: ${err.message}` }], warnings: [] })
    }
  }

  async close (): Promise<void> {
    const w = this.#worker
    this.#worker = null
    if (w !== null) await w.terminate()
  }
}
