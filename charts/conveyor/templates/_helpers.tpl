{{/* The chart's name, or nameOverride. */}}
{{- define "conveyor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of the release's objects: fullnameOverride, else the release name when it
contains the chart's name, else <release>-<chart>. DNS-1123, at most 63 characters. */}}
{{- define "conveyor.fullname" -}}
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

{{- define "conveyor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the server's pod: the Service and the Deployment use exactly these. */}}
{{- define "conveyor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "conveyor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/* Labels of every object but the component. */}}
{{- define "conveyor.commonLabels" -}}
helm.sh/chart: {{ include "conveyor.chart" . }}
app.kubernetes.io/name: {{ include "conveyor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: conveyor
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels of the server's objects. */}}
{{- define "conveyor.labels" -}}
{{ include "conveyor.commonLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "conveyor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "conveyor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "conveyor.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "conveyor.claimName" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "conveyor.fullname" .)) }}
{{- end }}

{{/* The name of the NATS server the chart runs for external drivers (nats.deploy). */}}
{{- define "conveyor.natsName" -}}
{{- printf "%s-nats" (include "conveyor.fullname" . | trunc 58 | trimSuffix "-") }}
{{- end }}
