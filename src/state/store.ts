import { randomBytes } from 'node:crypto'
import { open, readFile, rename, unlink } from 'node:fs/promises'
import { errors, StranglerError } from '../errors.ts'
import type { Coordination } from './coordination.ts'

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

/** An override kept while its context is absent from the config, as /status shows it. */
export interface Dormant { context: string; weight: number; reason: string; by: string; at: string; expiresAt: string | null }

/** One context's latest override in a store, or its removal (null), with the version that orders changes. */
export interface Entry {
  version: number
  override: Override | null
}

interface StoreBase {
  readonly location: string
  /** Reachable now (a file store: its last write succeeded). */
  readonly up: boolean
  /** Why it is not, or null. */
  readonly lastError: string | null
  /** Every context's latest entry. Rejects when the saved state cannot be read. */
  load: () => Promise<Map<string, Entry>>
  /**
   * Records one context's override (null: removed) and resolves with its
   * version; with `ifVersion`, only when the stored version is still that one or
   * there is none (null otherwise). Rejects with StoreUnavailableError when unreachable.
   */
  write: (name: string, override: Override | null, ifVersion?: number) => Promise<number | null>
  close: () => Promise<void>
}

/** Kept by this process alone (FileStore). */
export interface LocalStore extends StoreBase {
  readonly shared: false
}

/** How a replica's YAML of a context is anchored: see SharedStore#anchors. */
export type AnchorMode = 'start' | 'change' | number

/**
 * Shared by many replicas (RedisStore): a change applies only once the store
 * has it. Emits 'entry' (name, entry) for each change any replica makes, 'up'
 * after every (re)connection and 'down'.
 */
export interface SharedStore extends StoreBase, Coordination {
  readonly shared: true
  /** Resolves once connected; until then it keeps trying. */
  connect: () => Promise<void>
  /** Puts back an entry this replica knows when the store holds an older one or none. */
  seed: (name: string, entry: Entry) => Promise<void>
  /** For each [context, fingerprint, mode], the fleet version at which that YAML appeared. */
  anchors: (items: Array<[string, string, AnchorMode]>) => Promise<number[]>
  on: ((event: 'entry', listener: (name: string, entry: Entry) => void) => this) & ((event: 'up' | 'down', listener: () => void) => this)
}

/** Where overrides outlive the process: a local file, or a store that many replicas share, which also pushes their changes. */
export type OverrideStore = LocalStore | SharedStore

export function isOverride (v: unknown): v is Override {
  const o = v as Override
  return typeof o === 'object' && o !== null && typeof o.weight === 'number' && o.weight >= 0 && o.weight <= 100 &&
    typeof o.reason === 'string' && typeof o.by === 'string' && typeof o.at === 'string' &&
    (o.expiresAt === null || typeof o.expiresAt === 'string') && typeof o.configHash === 'string' && typeof o.contextHash === 'string'
}

/** A JSON file replaced by atomic rename, so a crash mid-write leaves the previous state whole. */
export class FileStore implements LocalStore {
  readonly shared = false
  up = true
  lastError: string | null = null
  #queue: Promise<void> = Promise.resolve()
  readonly #entries = new Map<string, Entry>()
  #version = 0

  constructor (readonly location: string) {}

  async load (): Promise<Map<string, Entry>> {
    let text: string
    try {
      text = await readFile(this.location, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map()
      throw err
    }
    const data = JSON.parse(text) as { version?: unknown; overrides?: unknown }
    if (data.version !== 1 || typeof data.overrides !== 'object' || data.overrides === null) {
      throw new StranglerError(errors.STATE_FILE_INVALID, ['not a strangler state file (expected {"version": 1, "overrides": {...}})'])
    }
    for (const [name, o] of Object.entries(data.overrides)) {
      if (!isOverride(o)) throw new StranglerError(errors.STATE_FILE_INVALID, [`override for "${name}" is malformed`])
      this.#entries.set(name, { version: ++this.#version, override: o })
    }
    return new Map(this.#entries)
  }

  /** The file is written whole after every change; writes are queued, so it ends with the last state asked for. */
  async write (name: string, override: Override | null, ifVersion?: number): Promise<number | null> {
    if (ifVersion !== undefined && (this.#entries.get(name)?.version ?? ifVersion) !== ifVersion) return null
    const version = ++this.#version
    if (override === null) this.#entries.delete(name)
    else this.#entries.set(name, { version, override })
    const overrides: OverrideMap = {}
    for (const [n, e] of this.#entries) if (e.override !== null) overrides[n] = e.override
    const text = `${JSON.stringify({ version: 1, overrides }, null, 2)}\n`
    const write = this.#queue.then(() => this.#write(text))
    this.#queue = write.catch(() => {})
    try {
      await write
      this.up = true
      this.lastError = null
    } catch (err) {
      this.up = false
      this.lastError = (err as Error).message
      throw err
    }
    return version
  }

  async close (): Promise<void> {
    await this.#queue
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
