{{/* The prefix of every name: the release name, with the chart's name unless it already holds it. */}}
{{- define "xdrive.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "xdrive.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (printf "%s-controller-manager" (include "xdrive.fullname" .)) -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "xdrive.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: xdrive
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: xdrive
{{- end -}}

{{/* The manager's pods: the Deployment's selector, the Service's and the ServiceMonitor's. */}}
{{- define "xdrive.selectorLabels" -}}
app.kubernetes.io/name: xdrive
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end -}}

{{/* The rules of a Role generated in config/rbac (copied to files/rbac by hack/sync-chart.sh). */}}
{{- define "xdrive.rules" -}}
{{- $role := .root.Files.Get (printf "files/rbac/%s" .file) | fromYaml -}}
{{- if not $role.rules -}}
{{- fail (printf "files/rbac/%s has no rules: run hack/sync-chart.sh" .file) -}}
{{- end -}}
rules:
{{ toYaml $role.rules }}
{{- end -}}

{{- define "xdrive.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}
