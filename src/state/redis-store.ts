import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { Redis } from 'ioredis'
import type { Logger } from 'pino'
import { StoreUnavailableError } from '../errors.ts'
import { isOverride, type AnchorMode, type Entry, type Override, type SharedStore } from './store.ts'

/*
 * Every change is one Lua script, so Redis orders them: it takes the next
 * number of one counter as its version, stores the entry and publishes it in
 * the same step. A replica applies an entry only when its version is higher
 * than the one it holds, so a late or repeated message never undoes a newer one.
 */
const WRITE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[3] ~= '' and cur and cjson.decode(cur).version ~= tonumber(ARGV[3]) then return -1 end
local v = redis.call('INCR', KEYS[2])
local entry = '{"version":' .. v .. ',"override":' .. ARGV[2] .. '}'
redis.call('HSET', KEYS[1], ARGV[1], entry)
redis.call('PUBLISH', ARGV[4], '{"name":' .. cjson.encode(ARGV[1]) .. ',"entry":' .. entry .. '}')
return v`

/** Puts back an entry a replica knows when Redis holds an older one or none (Redis lost its data). */
const SEED = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local v = tonumber(ARGV[3])
if cur and cjson.decode(cur).version >= v then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if tonumber(redis.call('GET', KEYS[2]) or '0') < v then redis.call('SET', KEYS[2], v) end
redis.call('PUBLISH', ARGV[4], '{"name":' .. cjson.encode(ARGV[1]) .. ',"entry":' .. ARGV[2] .. '}')
return 1`

/*
 * The version at which the fleet first ran a context's YAML (see
 * Overrides#anchors). Arguments come in triples: context, fingerprint, and
 * 'start' (use the recorded version), 'change' (a replica's YAML changed to
 * this one: a fresh version unless it is already the latest) or a number (a
 * replica's own record, put back after Redis lost its data).
 */
const ANCHOR = `
local out = {}
for i = 1, #ARGV, 3 do
  local latest = redis.call('HGET', KEYS[1], 'ctx:' .. ARGV[i])
  local v = redis.call('HGET', KEYS[1], 'fp:' .. ARGV[i + 1])
  local mode = ARGV[i + 2]
  if not v and tonumber(mode) then
    v = tonumber(mode)
    if tonumber(redis.call('GET', KEYS[2]) or '0') < v then redis.call('SET', KEYS[2], v) end
    redis.call('HSET', KEYS[1], 'fp:' .. ARGV[i + 1], v)
    if not latest then redis.call('HSET', KEYS[1], 'ctx:' .. ARGV[i], ARGV[i + 1]) end
  elseif not v or (mode == 'change' and latest ~= ARGV[i + 1]) then
    v = redis.call('INCR', KEYS[2])
    redis.call('HSET', KEYS[1], 'fp:' .. ARGV[i + 1], v, 'ctx:' .. ARGV[i], ARGV[i + 1])
  end
  out[#out + 1] = tonumber(v)
end
return out`

/** Renews the lease only for its holder. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0`

/** Marks a replica alive at Redis's own clock, and forgets those silent for a minute. */
const BEAT = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[2]), '+inf')`

const BEAT_MS = 1_000
/** A replica that has not beaten for this long is not waited for. */
const ALIVE_MS = 3_000
const CONFIRM_MS = 2_000

/** `redis://`, `rediss://` (TLS) or `unix:///path/to.sock`; the location shown in /status never carries a password. */
export function redisTarget (url: string): { connect: string; location: string } {
  if (url.startsWith('unix://')) return { connect: url.slice('unix://'.length), location: url }
  const u = new URL(url)
  return { connect: url, location: `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}` }
}

function parseEntry (text: string): Entry | null {
  try {
    const e = JSON.parse(text) as Entry
    if (!Number.isInteger(e.version) || e.version < 1 || (e.override !== null && !isOverride(e.override))) return null
    return { version: e.version, override: e.override }
  } catch {
    return null
  }
}

/** A message of the changes channel: `{"name": context, "entry": Entry}`, or null when it is not one. */
function parseMessage (text: string): { name: string; entry: Entry } | null {
  let m: unknown
  try {
    m = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof m !== 'object' || m === null) return null
  const { name, entry } = m as { name?: unknown; entry?: unknown }
  const parsed = typeof name === 'string' ? parseEntry(JSON.stringify(entry)) : null
  return parsed === null ? null : { name: name as string, entry: parsed }
}

/**
 * Runtime overrides in Redis, shared by every replica. Emits 'entry' (name,
 * entry) for each change any replica makes, 'up' after every (re)connection —
 * changes may have been missed, so the listener resynchronises — and 'down'.
 */
export class RedisStore extends EventEmitter implements SharedStore {
  readonly shared = true
  readonly location: string
  up = false
  lastError: string | null = null
  readonly #redis: Redis
  readonly #sub: Redis
  readonly #keys: { overrides: string; version: string; anchors: string; lease: string; windows: string; channel: string; acks: string; replicas: string }
  /** This replica's name in the fleet. */
  readonly replica = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
  /** The highest version each replica confirmed. */
  readonly #acked = new Map<string, number>()
  readonly #waiting = new Set<() => void>()
  #alive: string[] = []
  #beat: NodeJS.Timeout | null = null

  constructor (url: string, prefix: string, private readonly log: Logger) {
    super()
    const target = redisTarget(url)
    this.location = `${target.location} (keys ${prefix}*)`
    this.#keys = { overrides: `${prefix}overrides`, version: `${prefix}version`, anchors: `${prefix}yaml`, lease: `${prefix}leader`, windows: `${prefix}windows`, channel: `${prefix}changes`, acks: `${prefix}acks`, replicas: `${prefix}replicas` }
    // No offline queue: a command while disconnected fails at once (admin answers 503) instead of waiting.
    const options = { enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 2_000, retryStrategy: (n: number) => Math.min(50 * 2 ** n, 2_000), lazyConnect: true }
    this.#redis = new Redis(target.connect, options)
    this.#sub = new Redis(target.connect, { ...options, enableOfflineQueue: true })
    this.#redis.on('error', err => this.#failed(err))
    this.#sub.on('error', err => this.#failed(err))
    this.#redis.on('close', () => this.#down())
    this.#sub.on('close', () => this.#down())
    this.#redis.on('ready', () => this.#ready())
    this.#sub.on('ready', () => this.#ready())
    this.#sub.on('message', (channel: string, text: string) => {
      if (channel === this.#keys.acks) return this.#acknowledged(text)
      const m = parseMessage(text)
      if (m === null) return void this.log.warn({ store: this.location }, 'ignored a malformed message on the state channel')
      this.emit('entry', m.name, m.entry)
    })
  }

  /** Resolves once both connections are ready and subscribed; until then it keeps trying, logging each failure. */
  async connect (): Promise<void> {
    if (this.up) return
    const ready = new Promise<void>(resolve => this.once('up', resolve))
    await Promise.all([this.#redis.connect().catch(() => {}), this.#sub.connect().catch(() => {})])
    await ready
  }

  #ready (): void {
    if (this.#redis.status !== 'ready' || this.#sub.status !== 'ready' || this.up) return
    this.#sub.subscribe(this.#keys.channel, this.#keys.acks).then(async () => {
      if (this.up || this.#redis.status !== 'ready') return
      this.up = true
      this.lastError = null
      await this.#heartbeat()
      this.#beat ??= setInterval(() => { void this.#heartbeat() }, BEAT_MS).unref()
      this.log.info({ store: this.location }, 'shared state store connected')
      this.emit('up')
    }, err => this.#failed(err as Error))
  }

  #down (): void {
    if (!this.up) return
    this.up = false
    this.log.error({ store: this.location, err: this.lastError }, 'shared state store unreachable: serving with the last known overrides; admin changes are refused until it is back')
    this.emit('down')
  }

  #failed (err: Error): void {
    if (this.lastError !== err.message && !this.up) this.log.warn({ store: this.location, err: err.message }, 'shared state store not reachable yet')
    this.lastError = err.message
  }

  async #call<T> (run: () => Promise<T>): Promise<T> {
    if (!this.up) throw new StoreUnavailableError(`the shared state store ${this.location} is unreachable${this.lastError === null ? '' : ` (${this.lastError})`}`)
    try {
      return await run()
    } catch (err) {
      this.lastError = (err as Error).message
      throw new StoreUnavailableError(`the shared state store ${this.location} failed: ${(err as Error).message}`)
    }
  }

  async load (): Promise<Map<string, Entry>> {
    const all = await this.#call(() => this.#redis.hgetall(this.#keys.overrides))
    const out = new Map<string, Entry>()
    for (const [name, text] of Object.entries(all)) {
      const entry = parseEntry(text)
      if (entry === null) this.log.warn({ store: this.location, context: name }, 'ignored a malformed override in the shared store')
      else out.set(name, entry)
    }
    return out
  }

  async write (name: string, override: Override | null, ifVersion?: number): Promise<number | null> {
    const { overrides, version, channel } = this.#keys
    const v = await this.#call(() => this.#redis.eval(WRITE, 2, overrides, version, name, JSON.stringify(override), ifVersion ?? '', channel) as Promise<number>)
    return v < 0 ? null : v
  }

  async seed (name: string, entry: Entry): Promise<void> {
    const { overrides, version, channel } = this.#keys
    await this.#call(() => this.#redis.eval(SEED, 2, overrides, version, name, JSON.stringify(entry), entry.version, channel))
  }

  /** For each [context, fingerprint, mode], the fleet version at which that YAML appeared. */
  async anchors (items: Array<[string, string, AnchorMode]>): Promise<number[]> {
    if (items.length === 0) return []
    return await this.#call(() => this.#redis.eval(ANCHOR, 2, this.#keys.anchors, this.#keys.version, ...items.flat().map(String)) as Promise<number[]>)
  }

  /** Takes or keeps the fleet's single lease for `ms`; true while `holder` has it. */
  async lead (holder: string, ms: number): Promise<boolean> {
    return await this.#call(() => this.#redis.eval(RENEW, 1, this.#keys.lease, holder, ms) as Promise<number>) === 1
  }

  /** Publishes this replica's window data per context; it expires with the replica. */
  async shareWindows (replica: string, windows: Record<string, unknown>, ms: number): Promise<void> {
    const names = Object.keys(windows)
    if (names.length === 0) return
    const tx = this.#redis.multi()
    for (const name of names) tx.hset(`${this.#keys.windows}:${name}`, replica, JSON.stringify(windows[name])).pexpire(`${this.#keys.windows}:${name}`, ms)
    await this.#call(() => tx.exec())
  }

  /** Every replica's window data for each context. */
  async gatherWindows (contexts: string[]): Promise<Map<string, unknown[]>> {
    const tx = this.#redis.multi()
    for (const name of contexts) tx.hvals(`${this.#keys.windows}:${name}`)
    const replies = await this.#call(() => tx.exec()) ?? []
    const out = new Map<string, unknown[]>()
    contexts.forEach((name, i) => {
      const [err, values] = replies[i] ?? [null, []]
      out.set(name, err === null ? (values as string[]).map(v => JSON.parse(v) as unknown) : [])
    })
    return out
  }

  async #heartbeat (): Promise<void> {
    if (!this.up) return
    try {
      this.#alive = await this.#redis.eval(BEAT, 1, this.#keys.replicas, this.replica, ALIVE_MS) as string[]
    } catch {}
  }

  /** Tells the fleet this replica applied every change up to `version`. */
  ack (version: number): void {
    if (this.up) this.#redis.publish(this.#keys.acks, `${version} ${this.replica}`).catch(() => {})
  }

  #acknowledged (text: string): void {
    const space = text.indexOf(' ')
    const version = Number(text.slice(0, space))
    const replica = text.slice(space + 1)
    if (!Number.isInteger(version) || version <= (this.#acked.get(replica) ?? 0)) return
    this.#acked.set(replica, version)
    for (const wake of this.#waiting) wake()
  }

  /**
   * Waits until every other live replica confirmed `version` (at most 2 s);
   * null when all did, else a warning naming those that did not.
   */
  async confirm (version: number): Promise<string | null> {
    await this.#heartbeat()
    const others = this.#alive.filter(r => r !== this.replica)
    const missing = (): string[] => others.filter(r => (this.#acked.get(r) ?? 0) < version)
    if (missing().length > 0) {
      await new Promise<void>(resolve => {
        const wake = (): void => {
          if (missing().length > 0) return
          clearTimeout(timer)
          this.#waiting.delete(wake)
          resolve()
        }
        const timer = setTimeout(() => { this.#waiting.delete(wake); resolve() }, CONFIRM_MS)
        this.#waiting.add(wake)
      })
    }
    const late = missing()
    if (late.length === 0) return null
    this.log.warn({ version, replicas: late }, 'replicas did not confirm a change in time')
    return `${late.length} of ${others.length + 1} replicas (${late.join(', ')}) did not confirm within ${CONFIRM_MS / 1000}s; they apply it when they hear of it or reconnect.`
  }

  async close (): Promise<void> {
    if (this.#beat !== null) clearInterval(this.#beat)
    if (this.up) await this.#redis.zrem(this.#keys.replicas, this.replica).catch(() => {})
    this.removeAllListeners('up')
    this.#redis.disconnect()
    this.#sub.disconnect()
    this.up = false
  }
}
