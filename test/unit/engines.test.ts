import { readFileSync } from 'node:fs'
import semver from 'semver'
import t from 'tap'

const ROOT = new URL('../../', import.meta.url)
const pkg = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as { engines: { node: string } }
const lock = JSON.parse(readFileSync(new URL('package-lock.json', ROOT), 'utf8')) as { packages: Record<string, { dev?: boolean; engines?: { node?: string } }> }

t.test('engines.node promises no Node version that a runtime dependency does not support', async t => {
  const lowest = semver.minVersion(pkg.engines.node)
  t.ok(lowest !== null, `engines.node "${pkg.engines.node}" is a range`)
  const refusing: string[] = []
  for (const [where, p] of Object.entries(lock.packages)) {
    if (where === '' || p.dev === true || p.engines?.node === undefined) continue
    if (!semver.satisfies(lowest as semver.SemVer, p.engines.node)) refusing.push(`${where.replace(/.*node_modules\//, '')} wants ${p.engines.node}`)
  }
  t.strictSame(refusing, [], `every runtime dependency supports Node ${String(lowest)}`)
})
