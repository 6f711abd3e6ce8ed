{{/* Name of the chart, as the operator's objects are called (design.md §1). */}}
{{- define "dcs-migration-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Objects are named after the release; "dcs-migration-operator" when the release is called that. */}}
{{- define "dcs-migration-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "dcs-migration-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dcs-migration-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dcs-migration-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "dcs-migration-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: dcs-migration-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The leader-election Lease: one per release unless leaderElection.leaseName says otherwise. */}}
{{- define "dcs-migration-operator.leaseName" -}}
{{- .Values.leaderElection.leaseName | default (include "dcs-migration-operator.fullname" .) }}
{{- end }}

{{/* The ConfigMap holding caBundle's certificates: the chart's own (caBundle.pem) or the user's; empty: none. */}}
{{- define "dcs-migration-operator.caBundleConfigMap" -}}
{{- if .Values.caBundle.pem }}
{{- printf "%s-ca-bundle" (include "dcs-migration-operator.fullname" .) }}
{{- else if .Values.caBundle.configMapName }}
{{- .Values.caBundle.configMapName }}
{{- end }}
{{- end }}

{{/* The operator's own keyless identity (keyless.idpId or keyless.providerUrn): the directory its projected token
(the file `token`) is mounted at; empty: no keyless identity. */}}
{{- define "dcs-migration-operator.keylessTokenDir" -}}
{{- if or .Values.keyless.idpId .Values.keyless.providerUrn }}/var/run/secrets/dcs-migration-operator{{ end }}
{{- end }}

{{- define "dcs-migration-operator.serviceAccountName" -}}
{{- include "dcs-migration-operator.fullname" . }}
{{- end }}

{{- define "dcs-migration-operator.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if hasPrefix "sha256:" $tag }}
{{- printf "%s@%s" .Values.image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The rules the operator needs in the namespaces it watches: exactly the calls it makes. */}}
{{- define "dcs-migration-operator.watchRules" -}}
# RedisMigrations: watch them, patch finalizers and annotations (create-pending mark).
- apiGroups: ["dcs.migration.io"]
  resources: ["redismigrations"]
  verbs: ["get", "list", "watch", "patch"]
# Status, written with server-side apply.
- apiGroups: ["dcs.migration.io"]
  resources: ["redismigrations/status"]
  verbs: ["get", "patch"]
# Events on phase changes and errors (events.k8s.io/v1, created, and patched when a repeat extends a series).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# Referenced Secrets: credentials and Redis passwords are read, and the dcs.migration.io/in-use finalizer is put
# on them and taken off with a metadata patch, never an update (design.md §5: necessarily broad; watchNamespace
# narrows it to one namespace).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "patch"]
# spec.identity: a token for the named ServiceAccount (TokenRequest), bound to the operator's audience and valid
# 10 minutes, exchanged at once at IAM/STS. The admission policy admits spec.identity only from users who may
# create that token themselves (docs/operations.md, "Credentials without keys").
- apiGroups: [""]
  resources: ["serviceaccounts/token"]
  verbs: ["create"]
{{- end }}
