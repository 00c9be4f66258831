import fc from 'fast-check'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parse as parseYaml, stringify } from 'yaml'
import { loadConfigFile, parseConfig, type ParseResult } from '../../src/config/index.ts'
import { tempDir } from '../helpers.ts'
import { check, HOSTILE, ODD, OPTS, SLOTS, truncations, valid, VALID } from '../config-corpus.ts'

t.test('the base config is valid', async t => {
  const r = check(VALID)
  t.strictSame(r.errors, [])
  t.strictSame(r.config?.contexts.map(c => c.name), ['orders', 'carts'])
})

t.test('random text spliced into a valid config: a config or positioned errors, never a throw', async t => {
  fc.assert(fc.property(fc.nat({ max: VALID.length }), fc.string({ unit: 'binary', maxLength: 40 }), (at, junk) => {
    check(VALID.slice(0, at) + junk + VALID.slice(at))
  }), { numRuns: 300 })
  fc.assert(fc.property(fc.nat({ max: VALID.length }), fc.nat({ max: 40 }), fc.string({ unit: 'grapheme-ascii', maxLength: 20 }), (at, cut, junk) => {
    check(VALID.slice(0, at) + junk + VALID.slice(at + cut))
  }), { numRuns: 300 })
  t.pass('600 spliced configs')
})

t.test('any JSON value in any slot of a valid config: a config or positioned errors', async t => {
  fc.assert(fc.property(fc.constantFrom(...SLOTS), fc.jsonValue({ maxDepth: 4 }), (slot, value) => {
    check(valid(undefined, undefined, { [slot]: JSON.stringify(value) }))
  }), { numRuns: 300 })
  // And as block YAML, which can reshape the document around the slot.
  fc.assert(fc.property(fc.constantFrom(...SLOTS), fc.jsonValue({ maxDepth: 3 }), (slot, value) => {
    check(valid(undefined, undefined, { [slot]: '\n' + stringify(value).replace(/^/gm, '        ') }))
  }), { numRuns: 200 })
  t.pass('500 configs with random values')
})

t.test('random YAML documents, and random keys merged into a valid config', async t => {
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 5 }), value => {
    check(stringify(value))
  }), { numRuns: 300 })
  const base = parseConfig(VALID, 'routes.yaml', OPTS)
  t.ok(base.config !== null)
  const raw = parseYaml(VALID) as Record<string, any>
  const where = fc.constantFrom<Array<string>>([], ['server'], ['upstreams'], ['upstreams', 'legacy'], ['contexts'], ['contexts', 'orders'], ['contexts', 'orders', 'match'], ['contexts', 'orders', 'sticky'], ['contexts', 'orders', 'rewrite'])
  fc.assert(fc.property(where, fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), (at, key, value) => {
    const doc = structuredClone(raw)
    let node = doc
    for (const k of at) node = node[k]
    node[key] = value
    check(stringify(doc))
  }), { numRuns: 300 })
  fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), text => { check(text) }), { numRuns: 300 })
})

t.test('a valid config truncated at every byte offset: a config or positioned errors, every time', async t => {
  let accepted = 0
  for (const prefix of truncations(VALID)) if (check(prefix).config !== null) accepted++
  // Cut at a line end after `default:`, a prefix is a smaller valid config: a
  // file caught mid-write can route differently, which is why reloads are debounced.
  t.ok(accepted < VALID.length / 4, `${accepted} of ${VALID.length} prefixes are themselves valid configs`)
})

t.test('alias bombs, deep nesting, huge files and odd YAML: refused with positioned errors, never a throw or a hang', async t => {
  for (const [name, text] of Object.entries(HOSTILE)) {
    let r: ParseResult | undefined
    t.doesNotThrow(() => { r = check(text) }, name)
    if (r !== undefined) t.ok(r.config === null, `${name}: refused (${r.errors.length} errors, first: ${r.errors[0]?.message.slice(0, 120)})`)
  }
  for (const [name, text] of Object.entries(ODD)) t.doesNotThrow(() => { check(text) }, `${name}: a config or positioned errors`)
  t.match(check(HOSTILE['an undefined alias']).errors.map(e => e.message), [/nowhere/], 'an undefined alias is named, not called a bomb')
})

t.test('loading from a file: over 1 MiB and invalid UTF-8 are refused before parsing', async t => {
  const dir = tempDir(t)
  const big = path.join(dir, 'big.yaml')
  writeFileSync(big, ODD['2 MB of comments after a valid config'])
  const r = loadConfigFile(big, OPTS)
  t.equal(r.config, null)
  t.match(r.errors[0]?.message, /bytes; the limit is 1048576/)
  const binary = path.join(dir, 'binary.yaml')
  writeFileSync(binary, Buffer.concat([Buffer.from(VALID), Buffer.from([0xc0, 0xae, 0xff, 0xfe])]))
  t.match(loadConfigFile(binary, OPTS).errors.map(e => e.message), ['the config file is not valid UTF-8'])
})
