import { randomBytes } from 'node:crypto'
import { open, readFile, rename, unlink } from 'node:fs/promises'

/** A runtime override of one context's weight, as stored and as shown in /status. */
export interface Override {
  weight: number
  reason: string
  by: string
  at: string
  expiresAt: string | null
  /** Hash of the config the override was made against. */
  configHash: string
  /** Fingerprint of the context's own YAML then: when it changes, the YAML wins. */
  contextHash: string
  /** Set by a ramp: the step in force (0-based) and when the next is due. */
  ramp?: { step: number; nextAt: string }
}

export type OverrideMap = Record<string, Override>

/** Where overrides outlive the process. A shared store for many replicas implements the same two calls. */
export interface OverrideStore {
  readonly location: string
  /** The saved overrides; {} when nothing was saved yet. Rejects when the saved state cannot be read. */
  load: () => Promise<OverrideMap>
  save: (overrides: OverrideMap) => Promise<void>
}

function isOverride (v: unknown): v is Override {
  const o = v as Override
  return typeof o === 'object' && o !== null && typeof o.weight === 'number' && o.weight >= 0 && o.weight <= 100 &&
    typeof o.reason === 'string' && typeof o.by === 'string' && typeof o.at === 'string' &&
    (o.expiresAt === null || typeof o.expiresAt === 'string') && typeof o.configHash === 'string' && typeof o.contextHash === 'string'
}

/** A JSON file replaced by atomic rename, so a crash mid-write leaves the previous state whole. */
export class FileStore implements OverrideStore {
  #queue: Promise<void> = Promise.resolve()

  constructor (readonly location: string) {}

  async load (): Promise<OverrideMap> {
    let text: string
    try {
      text = await readFile(this.location, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
      throw err
    }
    const data = JSON.parse(text) as { version?: unknown; overrides?: unknown }
    if (data.version !== 1 || typeof data.overrides !== 'object' || data.overrides === null) {
      throw new Error('not a strangler state file (expected {"version": 1, "overrides": {...}})')
    }
    const out: OverrideMap = {}
    for (const [name, o] of Object.entries(data.overrides)) {
      if (!isOverride(o)) throw new Error(`override for "${name}" is malformed`)
      out[name] = o
    }
    return out
  }

  /** Writes are queued: the file always ends with the last state asked for. */
  save (overrides: OverrideMap): Promise<void> {
    const text = `${JSON.stringify({ version: 1, overrides }, null, 2)}\n`
    const write = this.#queue.then(() => this.#write(text))
    this.#queue = write.catch(() => {})
    return write
  }

  async #write (text: string): Promise<void> {
    const tmp = `${this.location}.${randomBytes(4).toString('hex')}.tmp`
    try {
      const fh = await open(tmp, 'w', 0o600)
      try {
        await fh.writeFile(text)
        await fh.sync()
      } finally {
        await fh.close()
      }
      await rename(tmp, this.location)
    } catch (err) {
      await unlink(tmp).catch(() => {})
      throw err
    }
  }
}
