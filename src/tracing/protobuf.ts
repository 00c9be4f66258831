/**
 * OTLP/protobuf: an ExportTraceServiceRequest in the protobuf wire format,
 * written by hand for the few messages it has. Field numbers are those of
 * opentelemetry-proto (collector/trace/v1/trace_service.proto,
 * trace/v1/trace.proto, common/v1/common.proto, resource/v1/resource.proto).
 */
import type { Attributes, AttributeValue, HrTime } from '@opentelemetry/api'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'

const VARINT = 0
const FIXED64 = 1
const LENGTH = 2

/** A growing buffer of protobuf fields; a nested message is written to a Writer of its own, then copied in with its length. */
class Writer {
  buf = Buffer.allocUnsafe(256)
  len = 0

  #room (n: number): void {
    if (this.len + n <= this.buf.length) return
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n))
    this.buf.copy(bigger, 0, 0, this.len)
    this.buf = bigger
  }

  /** A non-negative integer below 2^53. */
  varint (v: number): void {
    this.#room(10)
    while (v > 0x7f) {
      this.buf[this.len++] = (v % 0x80) | 0x80
      v = Math.floor(v / 0x80)
    }
    this.buf[this.len++] = v
  }

  /** int64 as protobuf writes it: a negative number is its 64-bit two's complement, ten bytes. */
  int64 (field: number, v: number): void {
    this.varint(field * 8 + VARINT)
    if (v >= 0) return this.varint(v)
    this.#room(10)
    let u = BigInt.asUintN(64, BigInt(v))
    while (u > 0x7fn) {
      this.buf[this.len++] = Number(u & 0x7fn) | 0x80
      u >>= 7n
    }
    this.buf[this.len++] = Number(u)
  }

  uint (field: number, v: number): void {
    if (v === 0) return
    this.varint(field * 8 + VARINT)
    this.varint(v)
  }

  fixed64 (field: number, v: bigint): void {
    this.varint(field * 8 + FIXED64)
    this.#room(8)
    this.len = this.buf.writeBigUInt64LE(v, this.len)
  }

  double (field: number, v: number): void {
    this.varint(field * 8 + FIXED64)
    this.#room(8)
    this.len = this.buf.writeDoubleLE(v, this.len)
  }

  /** Length-delimited, written even when empty (a oneof member, a present message). */
  bytes (field: number, b: Uint8Array): void {
    this.varint(field * 8 + LENGTH)
    this.varint(b.length)
    this.#room(b.length)
    this.buf.set(b, this.len)
    this.len += b.length
  }

  /** A proto3 string or bytes field: omitted when empty, as its default. */
  optional (field: number, b: Uint8Array | string | undefined): void {
    if (b === undefined || b.length === 0) return
    this.bytes(field, typeof b === 'string' ? Buffer.from(b) : b)
  }

  message (field: number, write: (w: Writer) => void): void {
    const w = new Writer()
    write(w)
    this.bytes(field, w.buf.subarray(0, w.len))
  }
}

function nanos ([s, ns]: HrTime): bigint {
  return BigInt(s) * 1_000_000_000n + BigInt(ns)
}

/** AnyValue: string_value 1, bool_value 2, int_value 3, double_value 4, array_value 5 (ArrayValue.values 1). */
function anyValue (w: Writer, v: AttributeValue): void {
  if (typeof v === 'string') w.bytes(1, Buffer.from(v))
  else if (typeof v === 'boolean') { w.varint(2 * 8 + VARINT); w.varint(v ? 1 : 0) } else if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) w.int64(3, v)
    else w.double(4, v)
  } else w.message(5, a => { for (const x of v) if (x != null) a.message(1, e => anyValue(e, x)) })
}

/** Repeated KeyValue (key 1, value 2) as field `field`. */
function keyValues (w: Writer, field: number, attributes: Attributes): void {
  for (const key in attributes) {
    const value = attributes[key]
    if (value !== undefined) w.message(field, kv => { kv.optional(1, key); kv.message(2, a => anyValue(a, value)) })
  }
}

/** Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4, name 5, kind 6, start 7, end 8, attributes 9, dropped_attributes_count 10, status 15. */
function span (w: Writer, s: ReadableSpan): void {
  const ctx = s.spanContext()
  w.bytes(1, Buffer.from(ctx.traceId, 'hex'))
  w.bytes(2, Buffer.from(ctx.spanId, 'hex'))
  w.optional(3, ctx.traceState?.serialize())
  if (s.parentSpanContext !== undefined) w.bytes(4, Buffer.from(s.parentSpanContext.spanId, 'hex'))
  w.optional(5, s.name)
  // The API counts from INTERNAL = 0, OTLP from UNSPECIFIED = 0.
  w.uint(6, s.kind + 1)
  w.fixed64(7, nanos(s.startTime))
  w.fixed64(8, nanos(s.endTime))
  keyValues(w, 9, s.attributes)
  w.uint(10, s.droppedAttributesCount)
  // Status: message 2, code 3.
  w.message(15, st => { st.optional(2, s.status.message); st.uint(3, s.status.code) })
}

/**
 * ExportTraceServiceRequest { resource_spans 1: ResourceSpans { resource 1:
 * Resource { attributes 1 }, scope_spans 2: ScopeSpans { scope 1:
 * InstrumentationScope { name 1, version 2 }, spans 2 } } } of one batch.
 */
export function encodeProtobuf (spans: readonly ReadableSpan[]): Buffer {
  const scopes = new Map<string, ReadableSpan[]>()
  for (const s of spans) {
    const key = `${s.instrumentationScope.name}@${s.instrumentationScope.version ?? ''}`
    const list = scopes.get(key)
    if (list === undefined) scopes.set(key, [s])
    else list.push(s)
  }
  const out = new Writer()
  out.message(1, rs => {
    rs.message(1, r => keyValues(r, 1, spans[0]?.resource.attributes ?? {}))
    for (const list of scopes.values()) {
      rs.message(2, ss => {
        const { name, version } = list[0].instrumentationScope
        ss.message(1, sc => { sc.optional(1, name); sc.optional(2, version) })
        for (const s of list) ss.message(2, w => span(w, s))
      })
    }
  })
  return out.buf.subarray(0, out.len)
}
