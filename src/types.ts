/** The shapes every part of strangler-proxy agrees on. Config is parsed and
 * validated into `Config`; `routing/` compiles it into a `RoutingTable`. */

export type Side = 'legacy' | 'new'

/** One problem found in a config file, printed as `FILE:LINE:COL message`. */
export interface ConfigIssue {
  file: string
  line: number
  col: number
  message: string
}

export interface HostPort {
  host: string
  port: number
}

export interface ServerConfig {
  listen: HostPort
  admin: HostPort
  /** null when unset or empty: admin mutations are then refused with 403. */
  adminToken: string | null
  /** The migration board's data and /status need the admin token too (they reveal the topology). */
  boardAuth: boolean
  /** CIDRs (or single addresses) whose X-Forwarded-* headers are believed. */
  trustProxy: string[]
  /** Absolute path of the runtime-override state file. */
  stateFile: string
  /** One log line per proxied request when true. */
  accessLog: boolean
  /** Keep the query string in the access log's path. */
  accessLogQuery: boolean
  /** Time in-flight requests get to finish after SIGTERM. */
  drainTimeoutMs: number
  /** Time a client has to send the request headers; then 408. */
  headersTimeoutMs: number
  /** Time a client has to send the whole request; then 408. */
  requestTimeoutMs: number
  /** Largest request head (request line and headers) accepted; larger gets 431. */
  maxHeaderBytes: number
  /** Largest request body forwarded; larger gets 413. 0: no limit. */
  maxBodyBytes: number
  /** Request headers whose names contain "_": dropped (default, as nginx does) or kept. */
  underscoreHeaders: 'drop' | 'keep'
  /** Proxy worker processes (node:cluster) sharing the proxy port; 1 runs the proxy in the main process. */
  workers: number
  /** Where runtime overrides live: null for the local stateFile, or a Redis that every replica shares. */
  state: { redis: { url: string; keyPrefix: string } } | null
}

export interface Upstream {
  name: string
  /** Scheme, host and port, no path: `http://orders.internal:3000`. */
  origin: string
  /** Path of the configured URL without a trailing slash ('' for none). Prepended to forwarded paths. */
  basePath: string
  /** Host header value the upstream expects (host[:port] from the URL). */
  host: string
  /** Time allowed until response headers. */
  timeoutMs: number
  /** Time allowed between two chunks of the response body. */
  bodyTimeoutMs: number
  preserveHost: boolean
  /** Connections to this upstream, at most, per process (per worker with server.workers); more requests wait. */
  maxConnections: number
  /** Time a request may wait for one of those connections before it is answered 503. */
  queueTimeoutMs: number
}

export interface Sticky {
  /** Lower-cased header name; exactly one of header or cookie is set. */
  header?: string
  cookie?: string
}

/**
 * Requests pinned to one side before the weight: those whose header, cookie or
 * query parameter has one of `values`. The first segment that matches decides.
 */
export interface Segment {
  /** Exactly one of header (lower-cased), cookie or query is set. */
  header?: string
  cookie?: string
  query?: string
  /** Compared exactly: header and cookie values as sent, query values after percent-decoding. */
  values: string[]
  side: Side
  /** The `segment` metrics label when given; the segment's index otherwise. */
  name?: string
}

export interface Rewrite {
  /** Removed from the front of the path when it matches on a segment boundary. */
  stripPrefix?: string
  /** Added to the front of the path after stripPrefix. */
  addPrefix?: string
}

/** Dark launch: a share of legacy's traffic is also sent to `new`, and the answers compared. */
export interface Shadow {
  /** Percent of the requests legacy serves that are also sent to new, 0–100, two decimals. */
  percent: number
  /** Upper-cased methods that may be shadowed (default GET, HEAD, OPTIONS). */
  methods: string[]
  /** Request bodies larger than this are not shadowed (they would have to be held in memory). */
  maxBodyBytes: number
  /** Lower-cased response headers whose values must match. */
  headers: string[]
  /** Dotted JSON paths that always differ; `*` is any key or array element. */
  ignore: string[]
  /** Lower-cased request/response headers and dotted JSON paths shown as [redacted] in diffs. */
  redactHeaders: string[]
  redactFields: string[]
  /** Percent of shadowed requests also sent to legacy a second time, to learn fields that differ by themselves. */
  learnNoise: number
}

/** Retry an idempotent request on legacy, once, when new fails before its response headers. */
export interface Fallback {
  /** Also when new answers 5xx. */
  on5xx: boolean
  /** Upper-cased methods that may be retried (default GET, HEAD, OPTIONS). */
  methods: string[]
  /** Bodies up to this size are held so they can be replayed; larger ones are never retried. */
  maxBodyBytes: number
}

/** Roll the context back automatically when new does worse than legacy. */
export interface Guard {
  /** Percentage points of 5xx (and fallbacks) new may have above legacy's rate. */
  maxErrorRateDelta: number
  /** How many times legacy's p99 latency new's may reach. */
  maxLatencyRatio: number
  windowMs: number
  /** Requests new needs in the window before the guard judges. */
  minRequests: number
}

/** Raise the effective weight step by step, while the guard holds. */
export interface Ramp {
  steps: number[]
  everyMs: number
}

export interface Context {
  name: string
  /** Canonical path prefixes, no trailing slash except the root '/'. */
  paths: string[]
  /** Lower-cased host names (no port); a leading `*.` is a wildcard for one or more labels. null = any host. */
  hosts: string[] | null
  /** Upper-cased methods. null = any method. */
  methods: string[] | null
  legacy: string
  new: string
  /** Percent of traffic sent to `new`, 0–100, at most two decimals. */
  weight: number
  sticky: Sticky | null
  /** Absent when the YAML has none, so a context's fingerprint (and its overrides) outlives the upgrade that added segments. */
  segments?: Segment[]
  rewrite: { legacy?: Rewrite; new?: Rewrite }
  shadow: Shadow | null
  fallback: Fallback | null
  guard: Guard | null
  ramp: Ramp | null
}

export interface Config {
  /** Absolute path of the file this came from ('<inline>' when parsed from a string). */
  file: string
  /** First 12 hex digits of the SHA-256 of the file's bytes. */
  hash: string
  server: ServerConfig
  upstreams: Record<string, Upstream>
  default: string
  contexts: Context[]
}
