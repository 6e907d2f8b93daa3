{{/*
The labels Helm adds for its own bookkeeping, on top of the manifest's. The
test that compares the chart with the manifest ignores exactly these.
*/}}
{{- define "kvcp.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The selector of the controller's pods (immutable in a StatefulSet). */}}
{{- define "kvcp.selectorLabels" -}}
app.kubernetes.io/name: kube-vip-cloud-provider
{{- end }}

{{/* The namespace of the ConfigMap and of the leader-election Lease. */}}
{{- define "kvcp.configNamespace" -}}
{{- default .Release.Namespace .Values.configMap.namespace -}}
{{- end }}

{{- define "kvcp.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end }}
