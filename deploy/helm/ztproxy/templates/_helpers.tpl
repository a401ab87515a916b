{{/* The chart's name, cut to the 63 characters of a DNS label. */}}
{{- define "ztproxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the prefix of every object's name. */}}
{{- define "ztproxy.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "ztproxy.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "ztproxy.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels selecting the pods; they never change over upgrades. */}}
{{- define "ztproxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ztproxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "ztproxy.labels" -}}
{{ include "ztproxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "ztproxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ztproxy.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ztproxy.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Whether the server certificate comes from a Secret (not ACME, not plaintext). */}}
{{- define "ztproxy.tlsSecret" -}}
{{- $tls := .Values.config.tls -}}
{{- if and (not .Values.config.insecure_plaintext) (not (and (kindIs "map" $tls) (hasKey $tls "acme"))) -}}true{{- end -}}
{{- end -}}

{{/*
The ztproxy config file: .Values.config with the keys the chart owns
(listeners, mounted file paths) laid over it. Checks that several
replicas share their state and their signing key.
*/}}
{{- define "ztproxy.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $store := default dict $cfg.store -}}
{{- if and (gt (int .Values.replicaCount) 1) (ne (default "embedded" $store.backend) "dynamodb") -}}
{{- fail "replicaCount > 1 needs config.store.backend: dynamodb: the embedded store is one file per pod, so sign-outs, risk profiles and flags would not be shared" -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.signingKey.secretName) -}}
{{- fail "replicaCount > 1 needs signingKey.secretName: replicas with generated keys sign assertions that the others' /.ztp/jwks.json does not publish" -}}
{{- end -}}
{{- $managed := dict
  "listen" (printf "0.0.0.0:%d" (int .Values.ports.https))
  "admin_listen" (printf "0.0.0.0:%d" (int .Values.ports.admin))
  "policies" (list "/etc/ztproxy/config/*.cedar")
  "store" (dict "path" "/var/lib/ztproxy/ztproxy.db") -}}
{{- $acme := and (kindIs "map" $cfg.tls) (hasKey $cfg.tls "acme") -}}
{{- if and (not $cfg.insecure_plaintext) (not $acme) -}}
{{- if not .Values.tls.secretName -}}
{{- fail "tls.secretName is required (or config.insecure_plaintext: true behind a TLS-terminating mesh)" -}}
{{- end -}}
{{- $tls := dict "cert_file" "/etc/ztproxy/tls/tls.crt" "key_file" "/etc/ztproxy/tls/tls.key" -}}
{{- if .Values.tls.clientCASecretName -}}
{{- $_ := set $tls "client_ca_file" (printf "/etc/ztproxy/client-ca/%s" .Values.tls.clientCASecretKey) -}}
{{- end -}}
{{- $_ := set $managed "tls" $tls -}}
{{- else if and $acme .Values.tls.clientCASecretName -}}
{{- $_ := set $managed "tls" (dict "client_ca_file" (printf "/etc/ztproxy/client-ca/%s" .Values.tls.clientCASecretKey)) -}}
{{- end -}}
{{- if .Values.signingKey.secretName -}}
{{- $_ := set $managed "assertion" (dict "signing_key_file" (printf "/etc/ztproxy/signing/%s" .Values.signingKey.secretKey)) -}}
{{- end -}}
{{- if .Values.sessionSecrets.secretName -}}
{{- $_ := set $managed "session" (dict "secrets_file" (printf "/etc/ztproxy/session/%s" .Values.sessionSecrets.secretKey)) -}}
{{- end -}}
{{- toYaml (mergeOverwrite $cfg $managed) -}}
{{- end -}}
