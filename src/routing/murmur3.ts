/** MurmurHash3, x86 32-bit variant (Austin Appleby, public domain). The sticky
 * bucket contract depends on this exact function: never change its output. */

const C1 = 0xcc9e2d51
const C2 = 0x1b873593

/** Mixes the whole 4-byte little-endian blocks of `data[0, end)` into `h`;
 * `end` must be a multiple of 4. Lets a caller hash a fixed prefix once. */
export function murmur3Blocks (h: number, data: Uint8Array, end: number): number {
  for (let i = 0; i < end; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
    k = Math.imul(k, C1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, C2)
    h ^= k
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  return h
}

/** Hashes `data[0, length)` on top of state `h`, then finalises for a message
 * of `totalLength` bytes in all (prefix already mixed into `h` included). */
export function murmur3Finish (h: number, data: Uint8Array, length: number, totalLength: number): number {
  const blocksEnd = length & ~3
  h = murmur3Blocks(h, data, blocksEnd)
  const rest = length & 3
  if (rest !== 0) {
    let k = 0
    if (rest === 3) k ^= data[blocksEnd + 2] << 16
    if (rest >= 2) k ^= data[blocksEnd + 1] << 8
    k ^= data[blocksEnd]
    k = Math.imul(k, C1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, C2)
    h ^= k
  }
  h ^= totalLength
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** MurmurHash3 x86 32-bit of `data`; the result is unsigned. */
export function murmur3_32 (data: Uint8Array, seed = 0): number {
  return murmur3Finish(seed | 0, data, data.length, data.length)
}
