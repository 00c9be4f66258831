import { Readable } from 'node:stream'
import { createGzip } from 'node:zlib'

export const PROMETHEUS = 'text/plain; version=0.0.4; charset=utf-8'
export const OPENMETRICS = 'application/openmetrics-text; version=1.0.0; charset=utf-8'

/** True when `accept` names OpenMetrics with a q above 0 (Prometheus asks for it first). */
export function wantsOpenMetrics (accept: string | undefined): boolean {
  return accept !== undefined && accepts(accept, 'application/openmetrics-text')
}

/** True when `header` (Accept or Accept-Encoding) lists `token` with a q above 0. */
export function accepts (header: string, token: string): boolean {
  for (const part of header.split(',')) {
    const [name, ...params] = part.split(';')
    if (name.trim().toLowerCase() !== token) continue
    const q = params.map(p => p.trim()).find(p => p.startsWith('q='))
    return q === undefined || Number(q.slice(2)) > 0
  }
  return false
}

/**
 * Prometheus text → OpenMetrics text, line by line as the chunks stream past:
 * a counter family is named without its `_total` (its samples keep it), no
 * blank lines between families, and `# EOF` at the end.
 */
export async function * openMetrics (text: AsyncIterable<string>): AsyncGenerator<string> {
  let rest = ''
  let help: string | null = null
  for await (const chunk of text) {
    const lines = (rest + chunk).split('\n')
    rest = lines.pop() as string
    const out: string[] = []
    for (const line of lines) {
      if (line === '') continue
      if (line.startsWith('# HELP ')) {
        help = line
        continue
      }
      if (line.startsWith('# TYPE ')) {
        const [, , name, type] = line.split(' ')
        const family = type === 'counter' && name.endsWith('_total') ? name.slice(0, -6) : name
        if (help !== null) out.push(`# HELP ${family}${help.slice(7 + name.length)}`)
        out.push(`# TYPE ${family} ${type}`)
        help = null
        continue
      }
      out.push(line)
    }
    if (out.length > 0) yield `${out.join('\n')}\n`
  }
  if (rest !== '') yield `${rest}\n`
  yield '# EOF\n'
}

/** The body as sent: gzip when the scraper accepts it (a 10,000-context scrape is 26 MB of text). */
export function encoded (body: AsyncIterable<string>, gzip: boolean): Readable {
  const stream = Readable.from(body, { objectMode: false })
  return gzip ? stream.pipe(createGzip()) : stream
}
