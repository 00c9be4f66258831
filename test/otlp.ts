import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'
import { configFile, tempDir } from './helpers.ts'

const CLI = new URL('../dist/cli.js', import.meta.url).pathname

export interface Span { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes: Record<string, unknown>; resource: Record<string, unknown>; scope: { name: string; version?: string }; status?: { code: string; message?: string }; start?: string; end?: string; traceState?: string }

/** One POST the receiver got: when, its Content-Type, its body. */
export interface Post { at: number; type: string | undefined; body: Buffer }

/**
 * The OTLP trace messages, numbers from opentelemetry-proto
 * (collector/trace/v1/trace_service.proto, trace/v1/trace.proto,
 * common/v1/common.proto, resource/v1/resource.proto), for `protoc --decode`.
 */
const PROTO = `syntax = "proto3";
package otlp;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; } }
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message Status { string message = 2; StatusCode code = 3; enum StatusCode { STATUS_CODE_UNSET = 0; STATUS_CODE_OK = 1; STATUS_CODE_ERROR = 2; } }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; fixed32 flags = 16; string name = 5;
  SpanKind kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9;
  uint32 dropped_attributes_count = 10; uint32 dropped_events_count = 12; uint32 dropped_links_count = 14; Status status = 15;
  enum SpanKind { SPAN_KIND_UNSPECIFIED = 0; SPAN_KIND_INTERNAL = 1; SPAN_KIND_SERVER = 2; SPAN_KIND_CLIENT = 3; SPAN_KIND_PRODUCER = 4; SPAN_KIND_CONSUMER = 5; }
}
`

/** A field of protoc's text format: a scalar (as printed) or a nested message. */
type TextValue = string | TextMessage
type TextMessage = Map<string, TextValue[]>

/** protoc's text format (`name: value` and `name {` … `}` lines) as nested maps; values as printed. */
export function parseText (text: string): TextMessage {
  const root: TextMessage = new Map()
  const stack = [root]
  const add = (m: TextMessage, k: string, v: TextValue): void => { m.set(k, [...(m.get(k) ?? []), v]) }
  for (const line of text.split('\n').map(l => l.trim()).filter(Boolean)) {
    if (line === '}') { stack.pop(); continue }
    const open = /^(\w+) \{$/.exec(line)
    if (open !== null) {
      const child: TextMessage = new Map()
      add(stack[stack.length - 1], open[1], child)
      stack.push(child)
      continue
    }
    const leaf = /^(\w+): (.*)$/.exec(line)
    if (leaf === null) throw new Error(`protoc output: ${line}`)
    add(stack[stack.length - 1], leaf[1], leaf[2])
  }
  return root
}

/** A quoted text-format string (C escapes, octal for other bytes) as its bytes. */
export function unquote (s: string): Buffer {
  if (!s.startsWith('"') || !s.endsWith('"')) throw new Error(`not a string: ${s}`)
  const out: number[] = []
  const body = s.slice(1, -1)
  const named: Record<string, number> = { n: 10, r: 13, t: 9, '"': 34, "'": 39, '\\': 92 }
  for (let i = 0; i < body.length; i++) {
    if (body[i] !== '\\') { out.push(...Buffer.from(body[i])); continue }
    const oct = /^[0-7]{1,3}/.exec(body.slice(i + 1))
    if (oct !== null) { out.push(parseInt(oct[0], 8)); i += oct[0].length; continue }
    out.push(named[body[++i]])
  }
  return Buffer.from(out)
}

function protoc (args: string[], body: Buffer): string {
  return execFileSync('protoc', args, { input: body, encoding: 'utf8' })
}

const one = (m: TextMessage, k: string): TextValue | undefined => m.get(k)?.[0]
const msg = (m: TextMessage, k: string): TextMessage => (one(m, k) ?? new Map()) as TextMessage
const str = (m: TextMessage, k: string): string | undefined => { const v = one(m, k); return v === undefined ? undefined : unquote(v as string).toString() }
const hex = (m: TextMessage, k: string): string | undefined => { const v = one(m, k); return v === undefined ? undefined : unquote(v as string).toString('hex') }
const KINDS: Record<string, number> = { SPAN_KIND_INTERNAL: 1, SPAN_KIND_SERVER: 2, SPAN_KIND_CLIENT: 3 }

function anyValue (v: TextMessage): unknown {
  if (v.has('string_value')) return str(v, 'string_value')
  if (v.has('int_value')) return Number(one(v, 'int_value'))
  if (v.has('bool_value')) return one(v, 'bool_value') === 'true'
  if (v.has('double_value')) return Number(one(v, 'double_value'))
  if (v.has('array_value')) return ((msg(v, 'array_value').get('values') ?? []) as TextMessage[]).map(anyValue)
  throw new Error(`unexpected AnyValue ${JSON.stringify([...v.keys()])}`)
}

function attributes (list: TextValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const kv of (list ?? []) as TextMessage[]) out[str(kv, 'key') as string] = anyValue(msg(kv, 'value'))
  return out
}

/**
 * The spans of an OTLP/protobuf ExportTraceServiceRequest, decoded by protoc
 * with the OTLP schema above: independent of our encoder. A field number or
 * wire type the schema does not expect shows as an unknown field: refused.
 */
export function decodeProtobuf (body: Buffer, dir: string): Span[] {
  const proto = path.join(dir, 'otlp.proto')
  writeFileSync(proto, PROTO)
  const text = protoc([`--proto_path=${dir}`, '--decode=otlp.ExportTraceServiceRequest', proto], body)
  const unknown = text.split('\n').filter(l => /^\s*\d+(: | \{)/.test(l))
  if (unknown.length > 0) throw new Error(`fields the OTLP schema does not have: ${unknown.join('; ')}`)
  const spans: Span[] = []
  for (const rs of (parseText(text).get('resource_spans') ?? []) as TextMessage[]) {
    const resource = attributes(msg(rs, 'resource').get('attributes'))
    for (const ss of (rs.get('scope_spans') ?? []) as TextMessage[]) {
      const scope = { name: str(msg(ss, 'scope'), 'name') as string, version: str(msg(ss, 'scope'), 'version') }
      for (const s of (ss.get('spans') ?? []) as TextMessage[]) {
        spans.push({
          traceId: hex(s, 'trace_id') as string,
          spanId: hex(s, 'span_id') as string,
          parentSpanId: hex(s, 'parent_span_id'),
          name: str(s, 'name') as string,
          kind: KINDS[one(s, 'kind') as string],
          traceState: str(s, 'trace_state'),
          start: one(s, 'start_time_unix_nano') as string,
          end: one(s, 'end_time_unix_nano') as string,
          status: { code: (one(msg(s, 'status'), 'code') ?? 'STATUS_CODE_UNSET') as string, message: str(msg(s, 'status'), 'message') },
          attributes: attributes(s.get('attributes')),
          resource,
          scope
        })
      }
    }
  }
  return spans
}

/** `protoc --decode_raw`: the body by field number alone, no schema at all. */
export function decodeRaw (body: Buffer): TextMessage {
  return parseText(protoc(['--decode_raw'], body))
}

function values (list: Array<{ key: string; value: Record<string, unknown> }>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const { key, value } of list) out[key] = value.intValue !== undefined ? Number(value.intValue) : Object.values(value)[0]
  return out
}

function decodeJson (body: Buffer): Span[] {
  const spans: Span[] = []
  for (const rs of JSON.parse(body.toString()).resourceSpans) {
    for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, attributes: values(s.attributes), resource: values(rs.resource.attributes), scope: ss.scope })
  }
  return spans
}

export const CONTENT_TYPE = { 'http/json': 'application/json', 'http/protobuf': 'application/x-protobuf' } as const

export interface Collector {
  url: string
  posts: Post[]
  /** The spans of every accepted POST, decoded according to its Content-Type. */
  spans: Span[]
  /** Resolves when `n` POSTs have arrived. */
  received: (n: number) => Promise<void>
}

/**
 * A real OTLP/HTTP receiver: POST /v1/traces in OTLP/JSON or OTLP/protobuf.
 * `answer` gives the status and headers of the n-th POST (0-based; 200 by
 * default; 0 closes the connection unanswered); spans are kept only from the
 * POSTs it accepts.
 */
export async function collector (t: Test, answer: (n: number) => { status: number; headers?: Record<string, string> } = () => ({ status: 200 })): Promise<Collector> {
  const dir = tempDir(t)
  const waiters: Array<() => void> = []
  const c: Collector = {
    url: '',
    posts: [],
    spans: [],
    received: n => new Promise(resolve => {
      const check = (): void => { if (c.posts.length >= n) resolve(); else waiters.push(check) }
      check()
    })
  }
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = []
    req.on('data', (p: Buffer) => parts.push(p))
    req.on('end', () => {
      const type = req.headers['content-type']
      if (req.method !== 'POST' || req.url !== '/v1/traces' || (type !== CONTENT_TYPE['http/json'] && type !== CONTENT_TYPE['http/protobuf'])) {
        res.writeHead(415).end()
        return
      }
      const body = Buffer.concat(parts)
      const { status, headers } = answer(c.posts.length)
      c.posts.push({ at: performance.now(), type, body })
      if (status === 0) req.socket.destroy()
      else if (status === 200) c.spans.push(...(type === CONTENT_TYPE['http/json'] ? decodeJson(body) : decodeProtobuf(body, dir)))
      if (status !== 0) res.writeHead(status, { 'content-type': type, ...headers }).end(type === CONTENT_TYPE['http/json'] ? '{}' : '')
      for (const w of waiters.splice(0)) w()
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  c.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return c
}

export interface Served {
  base: string
  admin: string
  /** Every JSON line the process has written to stdout so far. */
  logs: Array<Record<string, any>>
  /** Sends SIGTERM and waits for exit 0. */
  stop: () => Promise<void>
}

/** `strangler serve` as a real process with `env` added (and no OTEL_* of ours). */
export async function serve (t: Test, yaml: string, env: Record<string, string>, args: string[] = []): Promise<Served> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_')))
  const child = spawn(process.execPath, [...args, CLI, 'serve', '--config', configFile(t, yaml)], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const logs: Array<Record<string, any>> = []
  const lines = createInterface({ input: child.stdout })
  const listening = await new Promise<Record<string, string>>(resolve => lines.on('line', line => {
    const entry = JSON.parse(line)
    logs.push(entry)
    if (entry.msg === 'proxy listening') resolve(entry)
  }))
  return {
    base: `http://${listening.listen}`,
    admin: `http://${listening.admin}`,
    logs,
    stop: async () => {
      const exited = once(child, 'exit')
      const closed = once(lines, 'close')
      child.kill('SIGTERM')
      const [code] = await exited
      await closed
      t.equal(code, 0, 'exits 0 after flushing its spans')
    }
  }
}
