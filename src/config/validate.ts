import { dirname, resolve } from 'node:path'
import type { Config } from '../types.ts'
import { buildContexts } from './contexts.ts'
import { isRecord, upstreamAt, type Problems } from './problems.ts'
import { buildServer } from './server.ts'
import { buildUpstreams } from './upstreams.ts'

export const INLINE_FILE = '<inline>'

/**
 * The checks JSON Schema cannot express, building the Config as it goes.
 * Runs on data that may have failed the schema: whatever has the wrong shape
 * was reported there and is skipped here. The result is only meaningful when
 * nothing was reported.
 */
export function buildConfig (data: unknown, file: string, hash: string, problems: Problems): Config {
  const root = isRecord(data) ? data : {}
  const baseDir = file === INLINE_FILE ? process.cwd() : dirname(resolve(file))
  const upstreams = buildUpstreams(problems, root.upstreams)
  const declared = new Set(isRecord(root.upstreams) ? problems.keys(['upstreams'], root.upstreams) : [])
  const server = buildServer(problems, root.server, baseDir)
  const contexts = buildContexts(problems, root.contexts, declared)
  if (server.workers > 1) {
    for (const c of contexts) {
      for (const key of ['guard', 'ramp'] as const) {
        if (c[key] !== null) problems.error(['contexts', c.name, key], `${key} needs one process to judge all traffic: it does not work with server.workers > 1 yet`, 'key')
      }
    }
  }
  return { file, hash, server, upstreams, default: upstreamAt(problems, ['default'], root.default, declared), contexts }
}
