import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api'
import { TraceState } from '@opentelemetry/core'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import t from 'tap'
import { encodeProtobuf } from '../../src/tracing/protobuf.ts'
import { tempDir } from '../helpers.ts'
import { decodeProtobuf, decodeRaw } from '../otlp.ts'

const TRACE = '0af7651916cd43dd8448eb211c80319c'

function span (over: Partial<Record<keyof ReadableSpan, unknown>>): ReadableSpan {
  return {
    name: 'GET /api',
    kind: SpanKind.CLIENT,
    spanContext: () => ({ traceId: TRACE, spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED, traceState: new TraceState('vendor=abc') }),
    parentSpanContext: undefined,
    startTime: [1_764_000_000, 123_456_789],
    endTime: [1_764_000_001, 5],
    attributes: {},
    droppedAttributesCount: 0,
    status: { code: SpanStatusCode.UNSET },
    resource: { attributes: { 'service.name': 'edge' } },
    instrumentationScope: { name: 'strangler-proxy', version: '1.2.3' },
    ...over
  } as unknown as ReadableSpan
}

t.test('every attribute type, a trace state, an error status with its message, times to the nanosecond; decoded by protoc', async t => {
  const attributes = { s: 'x', empty: '', n: 200, zero: 0, negative: -5, big: 2 ** 53 - 1, d: 1.5, yes: true, no: false, list: ['a', 'b'], numbers: [1, -2], skipped: undefined }
  const body = encodeProtobuf([span({ attributes, status: { code: SpanStatusCode.ERROR, message: 'upstream refused' } })])
  const [decoded] = decodeProtobuf(body, tempDir(t))
  t.strictSame(decoded.attributes, { s: 'x', empty: '', n: 200, zero: 0, negative: -5, big: 2 ** 53 - 1, d: 1.5, yes: true, no: false, list: ['a', 'b'], numbers: [1, -2] })
  t.strictSame({ traceId: decoded.traceId, spanId: decoded.spanId, parentSpanId: decoded.parentSpanId, kind: decoded.kind, traceState: decoded.traceState }, { traceId: TRACE, spanId: '00f067aa0ba902b7', parentSpanId: undefined, kind: 3, traceState: 'vendor=abc' })
  t.strictSame([decoded.start, decoded.end], ['1764000000123456789', '1764000001000000005'])
  t.strictSame(decoded.status, { code: 'STATUS_CODE_ERROR', message: 'upstream refused' })
  t.strictSame(decoded.resource, { 'service.name': 'edge' })
  t.strictSame(decoded.scope, { name: 'strangler-proxy', version: '1.2.3' })
})

t.test('spans of two instrumentation scopes are two ScopeSpans under the one ResourceSpans', async t => {
  const other = { name: 'other', version: undefined }
  const body = encodeProtobuf([span({ name: 'a' }), span({ name: 'b', instrumentationScope: other }), span({ name: 'c' })])
  const spans = decodeProtobuf(body, tempDir(t))
  t.strictSame(spans.map(s => [s.scope.name, s.name]), [['strangler-proxy', 'a'], ['strangler-proxy', 'c'], ['other', 'b']])
  const raw = decodeRaw(body)
  t.equal(raw.get('1')?.length, 1, 'one ResourceSpans (field 1)')
  t.equal(((raw.get('1')?.[0]) as Map<string, unknown[]>).get('2')?.length, 2, 'two ScopeSpans (field 2)')
})

t.test('an empty batch is an empty ResourceSpans', async t => {
  t.strictSame(decodeProtobuf(encodeProtobuf([]), tempDir(t)), [])
})
