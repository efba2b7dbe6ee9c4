{{/* Chart name, truncated to a DNS label. */}}
{{- define "mmf-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name prefix of every object: the release name when it already contains the chart name
(so `helm install mmf-operator ...` gives `mmf-operator`, the name the recovery command in
NOTES.txt and the README uses), else `<release>-<chart>`.
*/}}
{{- define "mmf-operator.fullname" -}}
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

{{/* Object names derived from the full name (each the default of the matching operator flag). */}}
{{- define "mmf-operator.webhookService" -}}
{{- printf "%s-webhook" (include "mmf-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "mmf-operator.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "mmf-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "mmf-operator.metricsService" -}}
{{- printf "%s-metrics" (include "mmf-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "mmf-operator.policyConfigMap" -}}
{{- printf "%s-policy" (include "mmf-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "mmf-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "mmf-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mmf
{{- end }}

{{/* Labels that select the operator pods (immutable in the Deployment selector). */}}
{{- define "mmf-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mmf-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The operator image: repository:tag, or repository@digest when a digest is set. */}}
{{- define "mmf-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The helm test image. */}}
{{- define "mmf-operator.testImage" -}}
{{- if .Values.test.image.digest }}
{{- printf "%s@%s" .Values.test.image.repository .Values.test.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.test.image.repository .Values.test.image.tag }}
{{- end }}
{{- end }}

{{/* Namespaces the webhook never intercepts: kube-system and the operator's own. */}}
{{- define "mmf-operator.webhookExcludedNamespaces" -}}
- kube-system
{{- if ne .Release.Namespace "kube-system" }}
- {{ .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
Fails rendering when values contradict each other in a way the JSON schema cannot express.
*/}}
{{- define "mmf-operator.validate" -}}
{{- if hasKey .Values.policy.environments "base" }}
{{- fail "policy.environments.base: the name \"base\" is reserved for policy.base (the file base.yaml every environment starts from)" }}
{{- end }}
{{- if not (hasKey .Values.policy.environments .Values.environment) }}
{{- fail (printf "environment %q has no policy: add policy.environments.%s or pick one of %s" .Values.environment .Values.environment (keys .Values.policy.environments | sortAlpha | join ", ")) }}
{{- end }}
{{- if and .Values.webhook.enabled (eq (int .Values.webhook.port) (int .Values.probePort)) }}
{{- fail (printf "webhook.port and probePort are both %d: the webhook and the probe/metrics endpoint need different ports" (int .Values.probePort)) }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection) }}
{{- fail "replicaCount > 1 needs leaderElection: true (otherwise every replica reconciles at once)" }}
{{- end }}
{{- end }}

{{/*
PromQL matcher of this release's scrape target: the ServiceMonitor's job is the metrics Service's
name. Not the namespace: with honorLabels the plugin series carry the plugin's namespace.
*/}}
{{- define "mmf-operator.promSelector" -}}
job="{{ include "mmf-operator.metricsService" . }}"
{{- end }}
