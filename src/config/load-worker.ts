import { parentPort } from 'node:worker_threads'
import { loadConfigFile } from './load.ts'
import type { ParseOptions } from './parse.ts'

/** Runs in a worker thread: parsing a large file must not stall the proxy's event loop. */
parentPort?.on('message', ({ id, file, opts }: { id: number; file: string; opts: ParseOptions }) => {
  parentPort?.postMessage({ id, result: loadConfigFile(file, opts) })
})
