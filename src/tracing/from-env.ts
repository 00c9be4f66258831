import type { Logger } from 'pino'
import { noTracing, type Tracing } from '../proxy/tracing.ts'

/**
 * OpenTelemetry when the environment names an OTLP endpoint (and neither
 * OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none says otherwise); the SDK
 * is loaded only then. `noTracing` otherwise.
 */
export async function tracingFromEnv (env: NodeJS.ProcessEnv, log: Logger): Promise<Tracing> {
  const endpoint = (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '').trim()
  if (endpoint === '' || env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true' || env.OTEL_TRACES_EXPORTER?.trim() === 'none') return noTracing
  return (await import('./otel.ts')).startTracing(log)
}
