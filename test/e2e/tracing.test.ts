import { tracingCases } from '../tracing-cases.ts'

// The span tests, exported as OTLP/JSON (tracing-protobuf.test.ts: the same as OTLP/protobuf).
tracingCases('http/json')
