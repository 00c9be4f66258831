import { watch, type FSWatcher } from 'node:fs'
import path from 'node:path'

/**
 * Calls `onChange` once per burst of writes to `file`. The directory is watched,
 * not the file: editors replace files by rename, and Kubernetes updates a
 * mounted ConfigMap by swapping the `..data` symlink beside it.
 */
export function watchConfig (file: string, onChange: () => void, debounceMs = 100): () => void {
  const dir = path.dirname(file)
  const base = path.basename(file)
  let timer: NodeJS.Timeout | null = null
  const fire = (): void => {
    timer = null
    onChange()
  }
  const watcher: FSWatcher = watch(dir, { persistent: false }, (_event, name) => {
    if (name !== null && name !== base && !name.startsWith('..')) return
    if (timer !== null) clearTimeout(timer)
    timer = setTimeout(fire, debounceMs)
  })
  watcher.on('error', () => {})
  return () => {
    if (timer !== null) clearTimeout(timer)
    watcher.close()
  }
}
