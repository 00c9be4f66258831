import type { Override } from './store.ts'

/** The longest delay setTimeout takes (about 24.8 days); a later expiry re-arms. */
const MAX_TIMER = 2 ** 31 - 1

/** One timer per override with a TTL: `due` is called once its `expiresAt` has passed. */
export class Expiries {
  readonly #timers = new Map<string, NodeJS.Timeout>()

  constructor (private readonly due: (name: string, override: Override) => void) {}

  arm (name: string, override: Override): void {
    this.clear(name)
    if (override.expiresAt === null) return
    const remaining = Date.parse(override.expiresAt) - Date.now()
    const timer = setTimeout(() => {
      this.#timers.delete(name)
      if (Date.parse(override.expiresAt as string) > Date.now()) this.arm(name, override)
      else this.due(name, override)
    }, Math.max(0, Math.min(remaining, MAX_TIMER)))
    timer.unref()
    this.#timers.set(name, timer)
  }

  clear (name: string): void {
    clearTimeout(this.#timers.get(name))
    this.#timers.delete(name)
  }

  close (): void {
    for (const t of this.#timers.values()) clearTimeout(t)
    this.#timers.clear()
  }
}
