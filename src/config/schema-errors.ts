import { Ajv, type ErrorObject } from 'ajv'
import type { Path } from './locate.ts'
import { configSchema } from './schema.ts'
import { closest, label, nameList } from './words.ts'

export interface SchemaIssue {
  path: Path
  /** Whether the issue is about the key at path (unknown or invalid names) or its value. */
  at: 'key' | 'value'
  message: string
}

const validateSchema = new Ajv({ allErrors: true, verbose: true, strict: true }).compile(configSchema)

const TYPE_WORDS: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'true or false'
}

const NAME_RULE = 'use up to 63 letters, digits, ".", "_" or "-", starting with a letter or digit'

/** Structural problems of the plain data, in words a config author understands. */
export function schemaIssues (data: unknown): SchemaIssue[] {
  if (validateSchema(data)) return []
  const issues: SchemaIssue[] = []
  for (const error of validateSchema.errors ?? []) {
    const issue = describe(error)
    if (issue) issues.push(issue)
  }
  return issues
}

function describe (e: ErrorObject): SchemaIssue | null {
  const path = e.instancePath.split('/').slice(1).map(s => s.replaceAll('~1', '/').replaceAll('~0', '~'))
  const definition = /^#\/definitions\/(\w+)\/\w+$/.exec(e.schemaPath)?.[1]
  const what = label(path)

  if (e.propertyName !== undefined) {
    const name = e.propertyName
    const kind = definition === 'upstreamName' ? 'upstream' : 'context'
    const message =
      e.keyword === 'not'
        ? `context name "${name}" is reserved: it is the metrics label of unmatched traffic`
        : `${kind} name "${name}" is not allowed: ${NAME_RULE}`
    return { path: [...path, name], at: 'key', message }
  }
  if (definition === 'duration') return { path, at: 'value', message: `${what} must be a duration with a unit, such as 250ms, 10s, 5m, 1h or 1h30m` }
  if (definition === 'hostPort') return { path, at: 'value', message: `${what} must be host:port, such as 0.0.0.0:8080 or [::]:8080` }
  if (e.schemaPath.startsWith('#/definitions/segment/oneOf/')) return null
  if (definition === 'segment' && e.keyword === 'oneOf') return { path, at: 'value', message: 'a segment must set exactly one of header, cookie or query' }
  if (e.schemaPath === '#/definitions/segment/properties/name/pattern') {
    return { path, at: 'value', message: `segment name "${String(e.data)}" is not allowed: use up to 63 letters, digits, ".", "_" or "-", starting with a letter` }
  }
  if (e.schemaPath === '#/definitions/segment/properties/values/items/type') return { path, at: 'value', message: `${what} must be a string: quote numbers and booleans ("1", "true")` }
  if (definition === 'sticky' && e.keyword.endsWith('Properties') && e.keyword !== 'additionalProperties') {
    return { path, at: 'value', message: 'sticky must set exactly one of header or cookie' }
  }

  const parent = e.parentSchema ?? {}
  switch (e.keyword) {
    case 'propertyNames':
      return null
    case 'additionalProperties': {
      const key = String(e.params.additionalProperty)
      const known = Object.keys(parent.properties ?? {})
      const suggestion = closest(key, known)
      const hint = suggestion ? `did you mean "${suggestion}"?` : `allowed: ${nameList(known, known.length)}`
      return { path: [...path, key], at: 'key', message: `unknown key "${key}" (${hint})` }
    }
    case 'required':
      return { path, at: 'key', message: `${what} is missing required key "${e.params.missingProperty}"` }
    case 'type': {
      const types = ([] as string[]).concat(e.params.type as string | string[])
      return { path, at: 'value', message: `${what} must be ${TYPE_WORDS[types[0]] ?? types[0]}` }
    }
    case 'minimum':
    case 'maximum':
      return { path, at: 'value', message: `${what} must be between ${parent.minimum} and ${parent.maximum}` }
    case 'minItems':
      return { path, at: 'value', message: `${what} must list at least one entry` }
    case 'minProperties':
      if (path.length === 1 && path[0] === 'upstreams') return { path, at: 'value', message: 'upstreams must declare at least one upstream' }
      return { path, at: 'value', message: `${what} must not be empty` }
    case 'minLength':
      return { path, at: 'value', message: `${what} must not be empty` }
    case 'enum':
      return { path, at: 'value', message: `${what} must be ${(e.params.allowedValues as string[]).join(' or ')}` }
    default:
      return { path, at: 'value', message: `${what} ${e.message ?? 'is not valid'}` }
  }
}
