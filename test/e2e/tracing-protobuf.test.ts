import { tracingCases } from '../tracing-cases.ts'

// The span tests of tracing.test.ts, exported as OTLP/protobuf and decoded by protoc.
tracingCases('http/protobuf')
