import { watch, type BigIntStats, type FSWatcher } from 'node:fs'
import { stat } from 'node:fs/promises'
import path from 'node:path'

/** What changes when a file is written: null when it cannot be read. */
function fileState (file: string): Promise<BigIntStats | null> {
  return stat(file, { bigint: true }).catch(() => null)
}

function same (a: BigIntStats | null, b: BigIntStats | null): boolean {
  if (a === null || b === null) return a === b
  return a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs
}

/**
 * Calls `onChange` once per burst of writes to `file`, once the file has been
 * stable for `debounceMs`. The directory is watched, not the file: editors
 * replace files by rename, and Kubernetes updates a mounted ConfigMap by
 * swapping the `..data` symlink beside it. Quiet events are not enough: a
 * file written in place through another path (a hard link, a symlink's
 * target, a network filesystem) changes without an event here, so the file
 * itself must show no change — its mtime older than one interval, or its
 * size, mtime and inode the same across one.
 */
export function watchConfig (file: string, onChange: () => void, debounceMs = 100): () => void {
  const dir = path.dirname(file)
  const base = path.basename(file)
  let timer: NodeJS.Timeout | null = null
  /** Bumped by every event and by close: a check that finds it moved is stale. */
  let generation = 0
  const check = async (before: BigIntStats | null | undefined): Promise<void> => {
    timer = null
    const mine = generation
    const now = await fileState(file)
    if (mine !== generation) return
    const quiet = before === undefined
      ? now !== null && Date.now() - Number(now.mtimeNs / 1_000_000n) >= debounceMs
      : same(before, now)
    if (quiet) onChange()
    else timer = setTimeout(() => { void check(now) }, debounceMs)
  }
  const watcher: FSWatcher = watch(dir, { persistent: false }, (_event, name) => {
    if (name !== null && name !== base && !name.startsWith('..')) return
    generation++
    if (timer !== null) clearTimeout(timer)
    timer = setTimeout(() => { void check(undefined) }, debounceMs)
  })
  watcher.on('error', () => {})
  return () => {
    generation++
    if (timer !== null) clearTimeout(timer)
    watcher.close()
  }
}
