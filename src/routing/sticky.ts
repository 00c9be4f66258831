import type { Sticky } from '../types.ts'
import { murmur3_32, murmur3Blocks, murmur3Finish } from './murmur3.ts'

/** Request headers as Node gives them (`IncomingHttpHeaders` fits). */
export type HeaderBag = Readonly<Record<string, string | string[] | undefined>>

export const BUCKETS = 10000

const utf8 = new TextEncoder()

/** The sticky bucket of `key` in context `contextName`, 0..9999. Frozen
 * contract (DESIGN.md): murmur3_x86_32(utf8(name + "\0" + key), 0) mod 10000.
 * This is the readable definition; the hot path uses `bucketAfter`. */
export function bucket (contextName: string, key: string): number {
  return murmur3_32(utf8.encode(contextName + '\0' + key), 0) % BUCKETS
}

/** murmur3 state after the whole blocks of utf8(contextName + "\0"), computed
 * once per context so a request hashes only its key's bytes. */
export interface BucketPrefix {
  readonly state: number
  /** The 0–3 bytes of the prefix that did not fill a block. */
  readonly tail: Uint8Array
  /** Byte length of the blocks already mixed into `state`. */
  readonly mixedLength: number
}

export function bucketPrefix (contextName: string): BucketPrefix {
  const bytes = utf8.encode(contextName + '\0')
  const mixedLength = bytes.length & ~3
  return Object.freeze({
    state: murmur3Blocks(0, bytes, mixedLength),
    tail: bytes.slice(mixedLength),
    mixedLength
  })
}

// Reused across calls (the hot path is synchronous); grown when a key needs more.
let scratch = new Uint8Array(512)

/** Same value as `bucket(contextName, key)` for the context `prefix` was made
 * from, without building the concatenated string or a fresh byte array. */
export function bucketAfter (prefix: BucketPrefix, key: string): number {
  const tail = prefix.tail
  const need = tail.length + key.length * 3
  if (need > scratch.length) scratch = new Uint8Array(need * 2)
  const buf = scratch
  let n = 0
  for (; n < tail.length; n++) buf[n] = tail[n]
  n = encodeUtf8(key, buf, n)
  return murmur3Finish(prefix.state, buf, n, prefix.mixedLength + n) % BUCKETS
}

/** Writes the UTF-8 bytes of `s` at `buf[at]`, as TextEncoder would (a lone
 * surrogate becomes U+FFFD); returns the end offset. `buf` must hold 3 bytes
 * per UTF-16 unit. */
function encodeUtf8 (s: string, buf: Uint8Array, at: number): number {
  const len = s.length
  for (let i = 0; i < len; i++) {
    let c = s.charCodeAt(i)
    if (c < 0x80) {
      buf[at++] = c
    } else if (c < 0x800) {
      buf[at++] = 0xc0 | (c >> 6)
      buf[at++] = 0x80 | (c & 0x3f)
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < len ? s.charCodeAt(i + 1) : 0
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00)
        i++
        buf[at++] = 0xf0 | (c >> 18)
        buf[at++] = 0x80 | ((c >> 12) & 0x3f)
        buf[at++] = 0x80 | ((c >> 6) & 0x3f)
        buf[at++] = 0x80 | (c & 0x3f)
      } else {
        buf[at++] = 0xef
        buf[at++] = 0xbf
        buf[at++] = 0xbd
      }
    } else {
      buf[at++] = 0xe0 | (c >> 12)
      buf[at++] = 0x80 | ((c >> 6) & 0x3f)
      buf[at++] = 0x80 | (c & 0x3f)
    }
  }
  return at
}

/** The request's sticky key: the header's value (the first, if repeated) or
 * the named cookie's value. An empty value is no key. */
export function stickyKey (sticky: Sticky, headers: HeaderBag): string | undefined {
  if (sticky.header !== undefined) return headerValue(headers, sticky.header)
  return sticky.cookie === undefined ? undefined : cookieOf(headers, sticky.cookie)
}

/** A request header's text (`name` lower-cased; the first, if Node kept an array); undefined when absent or empty. */
export function headerValue (headers: HeaderBag, name: string): string | undefined {
  const value = headers[name]
  return nonEmpty(typeof value === 'string' ? value : value === undefined ? undefined : value[0])
}

/** The value of the first cookie called `name`, as sent (unquoted, never percent-decoded); undefined when absent or empty. */
export function cookieOf (headers: HeaderBag, name: string): string | undefined {
  const cookie = headers.cookie
  if (typeof cookie === 'string') return nonEmpty(cookieValue(cookie, name))
  if (cookie === undefined) return undefined
  for (let i = 0; i < cookie.length; i++) {
    const found = cookieValue(cookie[i], name)
    if (found !== undefined) return nonEmpty(found)
  }
  return undefined
}

/** Node hands header values over one byte per char (latin1). A key sent as
 * UTF-8 is decoded back, so the bucket is the one `bucket(name, key)` gives
 * for the text the client meant (DESIGN.md hashes utf8(key)). */
export function nonEmpty (value: string | undefined): string | undefined {
  if (value === undefined || value.length === 0) return undefined
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) > 0x7f) return Buffer.from(value, 'latin1').toString('utf8')
  }
  return value
}

function isSpace (c: number): boolean {
  return c === 0x20 || c === 0x09
}

/** The value of the first cookie called `name` in a `Cookie` header, unquoted
 * and trimmed; '' when present but empty; undefined when absent. Scans in
 * place: only the returned value is allocated. */
export function cookieValue (header: string, name: string): string | undefined {
  const len = header.length
  let i = 0
  while (i < len) {
    while (i < len && isSpace(header.charCodeAt(i))) i++
    let end = header.indexOf(';', i)
    if (end === -1) end = len
    if (header.startsWith(name, i)) {
      let j = i + name.length
      while (j < end && isSpace(header.charCodeAt(j))) j++
      if (j < end && header.charCodeAt(j) === 0x3d) {
        j++
        while (j < end && isSpace(header.charCodeAt(j))) j++
        let e = end
        while (e > j && isSpace(header.charCodeAt(e - 1))) e--
        if (e - j >= 2 && header.charCodeAt(j) === 0x22 && header.charCodeAt(e - 1) === 0x22) {
          j++
          e--
        }
        return header.slice(j, e)
      }
    }
    i = end + 1
  }
  return undefined
}
