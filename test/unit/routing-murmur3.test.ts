import t from 'tap'
import { murmur3_32, murmur3Blocks, murmur3Finish } from '../../src/routing/murmur3.ts'

const bytes = (s: string) => new TextEncoder().encode(s)
const raw = (...b: number[]) => Uint8Array.from(b)

// Published vectors (SMHasher / the widely cited reference list).
const vectors: [string, Uint8Array, number, number][] = [
  ["''", raw(), 0, 0],
  ["''", raw(), 1, 0x514e28b7],
  ["''", raw(), 0xffffffff, 0x81f16f39],
  ['ff ff ff ff', raw(0xff, 0xff, 0xff, 0xff), 0, 0x76293b50],
  ['21 43 65 87', raw(0x21, 0x43, 0x65, 0x87), 0, 0xf55b516b],
  ['21 43 65 87', raw(0x21, 0x43, 0x65, 0x87), 0x5082edee, 0x2362f9de],
  ['21 43 65', raw(0x21, 0x43, 0x65), 0, 0x7e4a8634],
  ['21 43', raw(0x21, 0x43), 0, 0xa0f7b07a],
  ['21', raw(0x21), 0, 0x72661cf4],
  ['00 00 00 00', raw(0, 0, 0, 0), 0, 0x2362f9de],
  ['00 00 00', raw(0, 0, 0), 0, 0x85f0b427],
  ['00 00', raw(0, 0), 0, 0x30f4c306],
  ['00', raw(0), 0, 0x514e28b7],
  ['Hello, world!', bytes('Hello, world!'), 1234, 0xfaf6cdb3],
  ['The quick brown fox jumps over the lazy dog', bytes('The quick brown fox jumps over the lazy dog'), 0, 0x2e4ff723]
]

/** MurmurHash3 x86_32 written again from the algorithm's description, in
 * BigInt arithmetic mod 2^32 instead of Math.imul and int32 shifts, as a
 * second source of truth that shares no code with the implementation. */
function reference (data: Uint8Array, seed: number): number {
  const M = 0xffffffffn
  const mul = (a: bigint, b: bigint) => (a * b) & M
  const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (32n - r))) & M
  const c1 = 0xcc9e2d51n
  const c2 = 0x1b873593n
  let h = BigInt(seed >>> 0)
  const blocks = Math.floor(data.length / 4)
  for (let b = 0; b < blocks; b++) {
    let k = 0n
    for (let j = 3; j >= 0; j--) k = (k << 8n) | BigInt(data[b * 4 + j])
    k = mul(rotl(mul(k, c1), 15n), c2)
    h = rotl(h ^ k, 13n)
    h = (mul(h, 5n) + 0xe6546b64n) & M
  }
  let k = 0n
  const tail = data.length % 4
  for (let j = tail - 1; j >= 0; j--) k = (k << 8n) | BigInt(data[blocks * 4 + j])
  if (tail > 0) h ^= mul(rotl(mul(k, c1), 15n), c2)
  h ^= BigInt(data.length)
  h ^= h >> 16n
  h = mul(h, 0x85ebca6bn)
  h ^= h >> 13n
  h = mul(h, 0xc2b2ae35n)
  h ^= h >> 16n
  return Number(h)
}

t.test('published test vectors', async t => {
  for (const [name, data, seed, want] of vectors) {
    t.equal(murmur3_32(data, seed), want, `${name} seed 0x${seed.toString(16)}`)
  }
})

t.test('the independent reference agrees with the published vectors', async t => {
  for (const [name, data, seed, want] of vectors) {
    t.equal(reference(data, seed), want, `${name} seed 0x${seed.toString(16)}`)
  }
})

t.test('agrees with the reference on every length 0..64 and assorted seeds', async t => {
  const data = new Uint8Array(64)
  for (let i = 0; i < data.length; i++) data[i] = (i * 151 + 7) & 0xff
  let mismatches = 0
  for (const seed of [0, 1, 42, 0x9747b28c, 0xffffffff]) {
    for (let n = 0; n <= data.length; n++) {
      const slice = data.subarray(0, n)
      if (murmur3_32(slice, seed) !== reference(slice, seed)) mismatches++
    }
  }
  t.equal(mismatches, 0)
})

t.test('default seed is 0 and the result is unsigned', async t => {
  t.equal(murmur3_32(raw(0xff, 0xff, 0xff, 0xff)), 0x76293b50)
  t.ok(murmur3_32(raw(0x21, 0x43, 0x65, 0x87)) > 0x7fffffff)
})

t.test('hashing a prefix once then the rest equals hashing the whole', async t => {
  const whole = bytes('orders\0user-123456')
  const mixed = 4
  const state = murmur3Blocks(0, whole, mixed)
  t.equal(murmur3Finish(state, whole.subarray(mixed), whole.length - mixed, whole.length), murmur3_32(whole))
})
