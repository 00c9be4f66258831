import { createHash, type Hash } from 'node:crypto'
import type { Captured } from './compare.ts'

/**
 * Collects one response for comparison: status, headers, up to `limit` bytes of
 * body and a hash of all of it. Calls `done` once, with the result or null when
 * the exchange failed.
 */
export class Capture {
  #status = 0
  #headers: Record<string, string> = {}
  #chunks: Buffer[] = []
  #kept = 0
  #size = 0
  #truncated = false
  #hash: Hash = createHash('sha256')
  #finished = false

  constructor (private readonly limit: number, private readonly done: (c: Captured | null, err?: Error) => void) {}

  /** Bytes held in memory now. */
  get held (): number {
    return this.#kept
  }

  head (status: number, raw: readonly Buffer[] | readonly string[]): void {
    this.#status = status
    for (let i = 0; i < raw.length; i += 2) this.#headers[raw[i].toString('latin1').toLowerCase()] = raw[i + 1].toString('latin1')
  }

  data (chunk: Buffer): void {
    this.#hash.update(chunk)
    this.#size += chunk.length
    if (this.#truncated) return
    if (this.#kept + chunk.length > this.limit) {
      this.#truncated = true
      this.#chunks = []
      this.#kept = 0
      return
    }
    this.#chunks.push(chunk)
    this.#kept += chunk.length
  }

  end (): void {
    if (this.#finished) return
    this.#finished = true
    this.done({ status: this.#status, headers: this.#headers, body: Buffer.concat(this.#chunks), truncated: this.#truncated, size: this.#size, hash: this.#hash.digest('hex') })
    this.#chunks = []
  }

  fail (err: Error): void {
    if (this.#finished) return
    this.#finished = true
    this.#chunks = []
    this.done(null, err)
  }
}
