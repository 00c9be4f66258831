{{- define "strangler-proxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "strangler-proxy.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The admin Service's name: kept short enough for the -admin suffix. */}}
{{- define "strangler-proxy.adminName" -}}
{{- printf "%s-admin" (include "strangler-proxy.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{- define "strangler-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strangler-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "strangler-proxy.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "strangler-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "strangler-proxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "strangler-proxy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "strangler-proxy.secretName" -}}
{{- default (include "strangler-proxy.fullname" .) .Values.adminToken.existingSecret }}
{{- end }}

{{/* Whole seconds of config.server.drainTimeout (a number and ms, s, m or h), rounded up. */}}
{{- define "strangler-proxy.drainSeconds" -}}
{{- $d := toString (dig "drainTimeout" "30s" (.Values.config.server | default dict)) }}
{{- $number := regexFind "^[0-9.]+" $d }}
{{- $perUnit := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 }}
{{- mulf (float64 $number) (get $perUnit (trimPrefix $number $d)) | ceil | int }}
{{- end }}

{{- define "strangler-proxy.terminationGracePeriodSeconds" -}}
{{- $floor := add (include "strangler-proxy.drainSeconds" . | int) .Values.preStopSleepSeconds }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $floor 10 }}
{{- else if lt (int .Values.terminationGracePeriodSeconds) $floor }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be at least drainTimeout + preStopSleepSeconds (%d), or in-flight requests are killed" (int .Values.terminationGracePeriodSeconds) $floor) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* The Secret holding the Redis URL, empty when overrides stay per pod. */}}
{{- define "strangler-proxy.redisSecret" -}}
{{- dig "redis" "existingSecret" "" (.Values.state | default dict) }}
{{- end }}

{{/*
The keys' prefix in Redis. Default: namespace and fullname, so two releases
sharing a Redis never share overrides; the proxy takes at most 100 characters.
*/}}
{{- define "strangler-proxy.redisKeyPrefix" -}}
{{- $prefix := dig "redis" "keyPrefix" "" (.Values.state | default dict) }}
{{- if $prefix }}
{{- $prefix }}
{{- else }}
{{- printf "%s:%s" .Release.Namespace (include "strangler-proxy.fullname" .) | trunc 99 }}:
{{- end }}
{{- end }}

{{/*
server.state of the config file, empty without state.redis.existingSecret. The
URL is a reference to the pod's environment: it holds a password and stays in
the Secret.
*/}}
{{- define "strangler-proxy.state" -}}
{{- if include "strangler-proxy.redisSecret" . }}
{{- toYaml (dict "redis" (dict "url" "${STRANGLER_REDIS_URL}" "keyPrefix" (include "strangler-proxy.redisKeyPrefix" .))) }}
{{- end }}
{{- end }}

{{/*
The config file. listen, admin, adminToken, stateFile and state are the chart's: the
probes and Prometheus reach the admin port from outside the pod, the token and the
Redis URL come from Secrets, and the ConfigMap mount is read-only.
*/}}
{{- define "strangler-proxy.routes" -}}
{{- $server := merge (dict
  "listen" "0.0.0.0:8080"
  "admin" "0.0.0.0:9090"
  "adminToken" "${STRANGLER_ADMIN_TOKEN}"
  "stateFile" "/var/lib/strangler/state.json") (deepCopy (.Values.config.server | default dict)) }}
{{- with include "strangler-proxy.state" . }}
{{- $_ := set $server "state" (fromYaml .) }}
{{- end }}
{{- $routes := .Values.config.routes -}}
server:
  {{- toYaml $server | nindent 2 }}
upstreams:
  {{- toYaml $routes.upstreams | nindent 2 }}
default: {{ index $routes "default" | toYaml }}
contexts:
  {{- toYaml ($routes.contexts | default dict) | nindent 2 }}
{{- end }}
