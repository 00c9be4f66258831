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
  return {
    file,
    hash,
    server: buildServer(problems, root.server, baseDir),
    upstreams,
    default: upstreamAt(problems, ['default'], root.default, declared),
    contexts: buildContexts(problems, root.contexts, declared)
  }
}
