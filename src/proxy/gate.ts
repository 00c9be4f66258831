import { performance } from 'node:perf_hooks'
import type { Readable } from 'node:stream'
import type { Dispatcher, Pool } from 'undici'

/** What the gate needs from an exchange besides undici's handler methods. */
export interface GatedHandler extends Dispatcher.DispatchHandler {
  /** Set by the gate when it sends the request; the exchange calls `release()` on it once, when it ends. */
  gate: Gate | null
  /** Nobody waits for the answer any more: the client went away. */
  abandoned (): boolean
  /** The request waited `queueTimeout` without being sent; `streamed`: its body is still on the client connection. */
  queueTimeout (streamed: boolean): void
}

interface Waiting {
  opts: Dispatcher.DispatchOptions
  handler: GatedHandler
  deadline: number
}

/**
 * At most `max` requests in flight to one upstream (its pool has as many
 * connections); the others wait in arrival order, each at most `waitMs`. The
 * wait ends when the request is handed to the pool: from then on the
 * upstream's `timeout` governs it. Every waiting request has the same wait, so
 * the head of the queue is always the next to expire and one timer suffices.
 */
export class Gate {
  #active = 0
  #waiting: Array<Waiting | undefined> = []
  #head = 0
  #timer: NodeJS.Timeout | null = null
  #closing: Promise<void> | null = null
  #idle: (() => void) | null = null

  constructor (readonly pool: Pool, readonly origin: string, readonly max: number, public waitMs: number) {}

  dispatch (opts: Dispatcher.DispatchOptions, handler: GatedHandler): void {
    if (this.#active < this.max) {
      this.#send(opts, handler)
      return
    }
    this.#waiting.push({ opts, handler, deadline: performance.now() + this.waitMs })
    if (this.#timer === null) this.#arm()
  }

  /** Requests waiting for a connection. */
  get waiting (): number {
    return this.#waiting.length - this.#head
  }

  #send (opts: Dispatcher.DispatchOptions, handler: GatedHandler): void {
    this.#active++
    handler.gate = this
    this.pool.dispatch(opts, handler)
  }

  #next (): Waiting | undefined {
    if (this.#head === this.#waiting.length) return undefined
    const w = this.#waiting[this.#head]
    this.#waiting[this.#head++] = undefined
    if (this.#head === this.#waiting.length) {
      this.#waiting = []
      this.#head = 0
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#head)
      this.#head = 0
    }
    return w
  }

  /** A request this gate sent has ended: the first one still waiting takes its place. */
  release (): void {
    this.#active--
    for (let w = this.#next(); w !== undefined; w = this.#next()) {
      if (w.handler.abandoned()) continue
      this.#send(w.opts, w.handler)
      return
    }
    if (this.#active === 0) this.#idle?.()
  }

  #arm (): void {
    const head = this.#waiting[this.#head] as Waiting
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, head.deadline - performance.now()))
  }

  #expire (): void {
    this.#timer = null
    const now = performance.now()
    while (this.#head < this.#waiting.length && (this.#waiting[this.#head] as Waiting).deadline <= now) {
      const w = this.#next() as Waiting
      if (w.handler.abandoned()) continue
      const body = w.opts.body
      const streamed = body != null && typeof (body as Readable).pipe === 'function'
      if (streamed) (body as Readable).destroy()
      w.handler.queueTimeout(streamed)
    }
    if (this.#head < this.#waiting.length) this.#arm()
    else if (this.#active === 0) this.#idle?.()
  }

  /** No new requests will come: the pool closes once those in flight and waiting are done. */
  retire (): Promise<void> {
    if (this.#closing === null) {
      this.#closing = new Promise<void>(resolve => { this.#idle = resolve }).then(() => this.pool.close())
      if (this.#active === 0 && this.waiting === 0) this.#idle?.()
    }
    return this.#closing
  }

  destroy (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#waiting = []
    this.#head = 0
    this.pool.destroy().catch(() => {})
  }
}
