import { readFileSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseConfig, type ParseOptions, type ParseResult } from './parse.ts'

export const MAX_CONFIG_BYTES = 1024 * 1024

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'a part of the path is not a directory',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the path is too long'
}

/**
 * Reads and parses a config file. Synchronous on purpose: a reload swaps the
 * table in one step. Never throws: an unreadable file is one issue at 1:1.
 */
export function loadConfigFile (file: string, opts: ParseOptions): ParseResult {
  const path = resolve(file)
  const failed = (message: string): ParseResult => ({ config: null, errors: [{ file: path, line: 1, col: 1, message }], warnings: [] })
  let bytes: Buffer
  try {
    // stat before opening: opening a FIFO would block until something writes to it.
    const stat = statSync(path)
    if (!stat.isFile()) return failed(`cannot read the config file: ${stat.isDirectory() ? 'it is a directory' : 'it is not a regular file'}`)
    if (stat.size > MAX_CONFIG_BYTES) return failed(`config file is ${stat.size} bytes; the limit is ${MAX_CONFIG_BYTES}`)
    bytes = readFileSync(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? ''
    return failed(`cannot read the config file: ${READ_ERRORS[code] ?? (err as Error).message}`)
  }
  // The file may have grown between stat and read.
  if (bytes.length > MAX_CONFIG_BYTES) return failed(`config file is ${bytes.length} bytes; the limit is ${MAX_CONFIG_BYTES}`)
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes)
  } catch {
    return failed('the config file is not valid UTF-8')
  }
  return parseConfig(text, path, opts)
}
