{{/* The name every object of a release shares. */}}
{{- define "podguard.fullname" -}}
{{- if eq .Release.Name "podguard" -}}podguard{{- else -}}{{ printf "%s-podguard" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "podguard.labels" -}}
app.kubernetes.io/name: podguard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "podguard.selector" -}}
app.kubernetes.io/name: podguard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}

{{/* repository:tag, or repository@digest when a digest is given (it wins). */}}
{{- define "podguard.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The Service's DNS names, which kube-apiserver connects to. */}}
{{- define "podguard.dnsNames" -}}
- {{ include "podguard.fullname" . }}.{{ .Release.Namespace }}.svc
- {{ include "podguard.fullname" . }}.{{ .Release.Namespace }}.svc.cluster.local
{{- end -}}

{{/* The container security context both podguard containers run with. */}}
{{- define "podguard.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}
