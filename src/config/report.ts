import { LineCounter } from 'yaml'
import type { ConfigIssue } from '../types.ts'

/** Collects issues by source offset and turns offsets into 1-based line:col. */
export class Report {
  readonly errors: ConfigIssue[] = []
  readonly warnings: ConfigIssue[] = []
  readonly #lines = new LineCounter()

  constructor (readonly file: string, text: string) {
    this.#lines.addNewLine(0)
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) this.#lines.addNewLine(i + 1)
  }

  error (offset: number, message: string): void {
    this.errors.push(this.#issue(offset, message))
  }

  warning (offset: number, message: string): void {
    this.warnings.push(this.#issue(offset, message))
  }

  position (offset: number): { line: number; col: number } {
    return this.#lines.linePos(offset)
  }

  #issue (offset: number, message: string): ConfigIssue {
    const { line, col } = this.#lines.linePos(offset)
    return { file: this.file, line, col, message }
  }
}
