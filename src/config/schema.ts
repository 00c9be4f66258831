/**
 * The structure of the config file as JSON Schema (draft-07), for the
 * validator and for editors. What JSON Schema cannot say (addresses, URLs,
 * paths, references between entries, overlaps) is checked in validate.ts.
 */

export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'
/** Starts with a letter, so a name never reads as another segment's index. */
export const SEGMENT_NAME_PATTERN = '^[A-Za-z][A-Za-z0-9._-]{0,62}$'
/** Same grammar as parseDuration: numbers with units, largest first (`1h30m`), not all zero. */
export const DURATION_PATTERN = '^(?=.*[1-9])(\\d+(\\.\\d+)?h)?(\\d+(\\.\\d+)?m(?!s))?(\\d+(\\.\\d+)?s)?(\\d+(\\.\\d+)?ms)?$'

const stringList = (description: string) => ({
  type: 'array',
  minItems: 1,
  items: { type: 'string' },
  description
})

export const configSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'strangler-proxy routes',
  type: 'object',
  additionalProperties: false,
  required: ['upstreams', 'default'],
  properties: {
    server: {
      type: ['object', 'null'],
      additionalProperties: false,
      properties: {
        listen: { $ref: '#/definitions/hostPort', description: 'Address of the proxy. Default 0.0.0.0:8080.' },
        admin: { $ref: '#/definitions/hostPort', description: 'Address of the admin API, health and metrics. Default 127.0.0.1:9090.' },
        adminToken: { type: 'string', description: 'Bearer token for admin mutations; empty or absent refuses them.' },
        boardAuth: { type: 'boolean', description: 'The migration board\'s data and /status need the admin token too. Default false.' },
        trustProxy: {
          type: 'array',
          items: { type: 'string' },
          description: 'Addresses or CIDRs of peers whose X-Forwarded-* headers are believed.'
        },
        stateFile: { type: 'string', minLength: 1, description: 'Runtime overrides; default strangler-state.json beside the config.' },
        state: {
          type: 'object',
          additionalProperties: false,
          required: ['redis'],
          description: 'Share runtime overrides between replicas through Redis instead of the local stateFile.',
          properties: {
            redis: {
              type: 'object',
              additionalProperties: false,
              required: ['url'],
              properties: {
                url: { type: 'string', minLength: 1, description: 'redis://, rediss:// (TLS) or unix:///path; put the password in an environment variable: ${REDIS_URL}.' },
                keyPrefix: { type: 'string', maxLength: 100, description: 'Prefix of every key and channel; one per fleet sharing a Redis. Default strangler:.' }
              }
            }
          }
        },
        accessLog: { type: 'boolean', description: 'One log line per proxied request. Default false.' },
        accessLogQuery: { type: 'boolean', description: 'Keep the query string in the access log\'s path (it may hold tokens or personal data). Default false.' },
        drainTimeout: { $ref: '#/definitions/duration', description: 'Time in-flight requests get after SIGTERM. Default 30s.' },
        headersTimeout: { $ref: '#/definitions/duration', description: 'Time a client has to send the request headers. Default 30s.' },
        requestTimeout: { $ref: '#/definitions/duration', description: 'Time a client has to send the whole request. Default 5m.' },
        maxHeaderBytes: { type: 'integer', minimum: 1024, maximum: 1048576, description: 'Largest request head accepted; larger gets 431. Default 16384.' },
        maxBodyBytes: { type: 'integer', minimum: 0, description: 'Largest request body forwarded; larger gets 413. 0 (default) means no limit.' },
        underscoreHeaders: { enum: ['drop', 'keep'], description: 'Request headers whose names contain "_": drop (default, like nginx: WSGI, CGI and PHP would read X_Forwarded_For as X-Forwarded-For) or keep.' },
        workers: {
          description: 'Proxy worker processes sharing the port: a number from 1 to 64, or auto for one per core. Default 1.'
        }
      }
    },
    upstreams: {
      type: 'object',
      minProperties: 1,
      propertyNames: { $ref: '#/definitions/upstreamName' },
      additionalProperties: { $ref: '#/definitions/upstream' }
    },
    default: { type: 'string', description: 'The upstream for traffic that matches no context.' },
    contexts: {
      type: ['object', 'null'],
      propertyNames: { $ref: '#/definitions/contextName' },
      additionalProperties: { $ref: '#/definitions/context' }
    }
  },
  definitions: {
    hostPort: { type: 'string', description: 'host:port; IPv6 as [::]:8080.' },
    duration: { type: 'string', pattern: DURATION_PATTERN, description: 'A number with a unit: 250ms, 10s, 5m, 1h; or units largest first: 1h30m, 1m30s.' },
    upstreamName: { type: 'string', pattern: NAME_PATTERN },
    contextName: { type: 'string', pattern: NAME_PATTERN, not: { const: 'default' } },
    upstream: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: { type: 'string', description: 'http(s)://host[:port][/base-path], no credentials, query or fragment.' },
        timeout: { $ref: '#/definitions/duration', description: 'Time allowed until response headers. Default 30s.' },
        bodyTimeout: { $ref: '#/definitions/duration', description: 'Time allowed between two chunks of the body. Default 5m.' },
        preserveHost: { type: 'boolean', description: "Send the client's Host instead of the upstream's. Default false." },
        maxConnections: { type: 'integer', minimum: 1, maximum: 65536, description: 'Connections to this upstream at most, per process (per worker); more requests wait. Default 64.' },
        queueTimeout: { $ref: '#/definitions/duration', description: 'Time a request may wait for a connection before it gets 503. Default 10s.' }
      }
    },
    context: {
      type: 'object',
      additionalProperties: false,
      required: ['match', 'legacy', 'new', 'weight'],
      properties: {
        match: {
          type: 'object',
          additionalProperties: false,
          required: ['paths'],
          properties: {
            paths: stringList('Path prefixes, matched on segment boundaries.'),
            hosts: stringList('Host names or *.wildcards; absent: any host.'),
            methods: stringList('HTTP methods; absent: any method.')
          }
        },
        legacy: { type: 'string', description: 'The upstream this context is moving away from.' },
        new: { type: 'string', description: 'The upstream that replaces it.' },
        weight: { type: 'number', minimum: 0, maximum: 100, description: 'Percent of traffic sent to new, at most two decimals.' },
        sticky: { $ref: '#/definitions/sticky' },
        segments: {
          type: 'array',
          items: { $ref: '#/definitions/segment' },
          description: 'Requests pinned to one side whatever the weight, checked in order before it; the first that matches decides. A rollback and a preview token still win.'
        },
        shadow: { $ref: '#/definitions/shadow' },
        fallback: {
          description: 'true, or {on5xx, methods, maxBodyBytes}: retry on legacy, once, when new refuses, resets or times out before answering.'
        },
        guard: {
          type: 'object',
          additionalProperties: false,
          description: 'Roll back automatically when new does worse than legacy over a window.',
          properties: {
            maxErrorRateDelta: { type: 'number', minimum: 0, maximum: 100, description: 'Points of 5xx rate new may have above legacy. Default 5.' },
            maxLatencyRatio: { type: 'number', minimum: 1, description: "How many times legacy's p99 new's may reach. Default 3." },
            window: { $ref: '#/definitions/duration', description: 'Sliding window. Default 5m.' },
            minRequests: { type: 'integer', minimum: 1, description: 'Requests new needs in the window before the guard judges. Default 100.' }
          }
        },
        ramp: {
          type: 'object',
          additionalProperties: false,
          required: ['steps', 'every'],
          description: 'Raise the effective weight one step at a time while the guard holds.',
          properties: {
            steps: { type: 'array', minItems: 1, items: { type: 'number', minimum: 0, maximum: 100 }, description: 'Weights, ascending.' },
            every: { $ref: '#/definitions/duration', description: 'Time between steps.' }
          }
        },
        rewrite: {
          type: 'object',
          additionalProperties: false,
          properties: { legacy: { $ref: '#/definitions/rewrite' }, new: { $ref: '#/definitions/rewrite' } }
        }
      }
    },
    shadow: {
      type: 'object',
      additionalProperties: false,
      required: ['percent'],
      description: 'Also send a share of the requests legacy serves to new, and compare the answers.',
      properties: {
        percent: { type: 'number', minimum: 0, maximum: 100, description: 'Percent of legacy-served requests mirrored to new, at most two decimals.' },
        methods: stringList('Methods that may be shadowed. Default GET, HEAD, OPTIONS.'),
        maxBodyBytes: { type: 'integer', minimum: 0, maximum: 1048576, description: 'Request bodies larger than this are not shadowed. Default 65536.' },
        compare: {
          type: 'object',
          additionalProperties: false,
          properties: {
            headers: stringList('Response headers whose values must match.'),
            ignore: stringList('Dotted JSON paths that always differ; * is any key or element.')
          }
        },
        redact: {
          type: 'object',
          additionalProperties: false,
          properties: {
            headers: stringList('Headers shown as [redacted] in diffs.'),
            fields: stringList('Dotted JSON paths shown as [redacted] in diffs.')
          }
        },
        learnNoise: { type: 'number', minimum: 0, maximum: 100, description: 'Percent of shadowed requests also sent to legacy twice, to learn fields that differ by themselves. Default 5.' }
      }
    },
    sticky: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      maxProperties: 1,
      properties: {
        header: { type: 'string', minLength: 1, description: 'Request header whose value keeps a user on one side.' },
        cookie: { type: 'string', minLength: 1, description: 'Cookie whose value keeps a user on one side.' }
      }
    },
    segment: {
      type: 'object',
      additionalProperties: false,
      required: ['values', 'side'],
      oneOf: [{ properties: { header: {} }, required: ['header'] }, { properties: { cookie: {} }, required: ['cookie'] }, { properties: { query: {} }, required: ['query'] }],
      properties: {
        header: { type: 'string', minLength: 1, description: 'Request header (any case) whose value pins the request; values compare case-sensitively.' },
        cookie: { type: 'string', minLength: 1, description: 'Cookie whose value, as sent, pins the request.' },
        query: { type: 'string', minLength: 1, description: 'Query parameter whose value, percent-decoded, pins the request.' },
        values: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: 'Exact values that pin the request.' },
        side: { enum: ['legacy', 'new'], description: 'Where the matching requests go.' },
        name: { type: 'string', pattern: SEGMENT_NAME_PATTERN, description: 'The segment label of strangler_segment_requests_total; default: its index from 0.' }
      }
    },
    rewrite: {
      type: 'object',
      additionalProperties: false,
      properties: {
        stripPrefix: { type: 'string', description: 'Removed from the front of the path on a segment boundary.' },
        addPrefix: { type: 'string', description: 'Added to the front of the path after stripPrefix.' }
      }
    }
  }
} as const
