import type { ConfigIssue } from '../types.ts'

export function formatIssue (i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.col} ${i.message}`
}

export function byPosition (a: ConfigIssue, b: ConfigIssue): number {
  return a.line - b.line || a.col - b.col
}
