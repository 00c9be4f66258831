/** Errors of the admin API: a stable `code` and a message that says what to do. */
export interface AdminError {
  status: number
  code: string
  message: string
}

export const adminErrors = {
  disabled: (): AdminError => ({ status: 403, code: 'STRANGLER_ADMIN_DISABLED', message: 'Admin mutations are disabled because no admin token is configured. Set server.adminToken in the config (for example adminToken: ${STRANGLER_ADMIN_TOKEN}) and start the proxy with that variable set.' }),
  unauthorized: (): AdminError => ({ status: 401, code: 'STRANGLER_UNAUTHORIZED', message: 'Send the admin token as "Authorization: Bearer <token>".' }),
  unknownContext: (name: string, known: string[]): AdminError => ({ status: 404, code: 'STRANGLER_UNKNOWN_CONTEXT', message: `No context named "${name}". Contexts: ${known.length === 0 ? '(none)' : known.join(', ')}.` }),
  noOverride: (name: string): AdminError => ({ status: 404, code: 'STRANGLER_NO_OVERRIDE', message: `Context "${name}" has no runtime override; it runs on its configured weight.` }),
  badRequest: (message: string): AdminError => ({ status: 400, code: 'STRANGLER_BAD_REQUEST', message }),
  badWeight: (message: string): AdminError => ({ status: 400, code: 'STRANGLER_BAD_WEIGHT', message }),
  configInvalid: (errors: string[]): AdminError & { errors: string[] } => ({ status: 422, code: 'STRANGLER_CONFIG_INVALID', message: 'The config file is invalid; the last good config keeps serving.', errors }),
  storeDown: (detail: string): AdminError => ({ status: 503, code: 'STRANGLER_STATE_STORE_DOWN', message: `Not applied on any replica: ${detail}. Replicas keep serving with the overrides they have. Retry once the store is back (strangler_state_store_up), or change the weight in the YAML.` }),
  notFound: (method: string, url: string): AdminError => ({ status: 404, code: 'STRANGLER_NOT_FOUND', message: `No admin route ${method} ${url.split('?')[0]}.` })
}
