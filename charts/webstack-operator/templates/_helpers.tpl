{{/* The chart's name, or nameOverride. */}}
{{- define "webstack-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name: fullnameOverride, or release-chart (just the release when
it already contains the chart's name). Kept to 63 characters, as a label value must be.
*/}}
{{- define "webstack-operator.fullname" -}}
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

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "webstack-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels that select the operator's pods; they never change over upgrades. */}}
{{- define "webstack-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "webstack-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The labels of every object of the release. */}}
{{- define "webstack-operator.labels" -}}
helm.sh/chart: {{ include "webstack-operator.chart" . }}
{{ include "webstack-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ include "webstack-operator.tag" . | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: webstack
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The image tag: image.tag, or the chart's appVersion. */}}
{{- define "webstack-operator.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "webstack-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "webstack-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The role map the operator reads (--role-map): roleMap under `namespaces`, ending with a newline,
exactly as the ConfigMap stores it (the pod's checksum/role-map is its sha256).
*/}}
{{- define "webstack-operator.roleMapFile" -}}
{{- printf "%s\n" (dict "namespaces" .Values.roleMap | toYaml) }}
{{- end }}
