{{/* Names, labels and images shared by the templates. */}}

{{- define "policy-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "policy-gateway.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "policy-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "policy-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "policy-gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "policy-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "policy-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "policy-gateway.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* registry/repository:tag, or @digest when one is pinned. */}}
{{- define "policy-gateway.image" -}}
{{- $ref := printf "%s/%s" .registry .image.repository -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $ref .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref .image.tag -}}
{{- end -}}
{{- end -}}

{{- define "policy-gateway.postgres" -}}
{{- if .Values.database.urlSecret.name -}}true{{- end -}}
{{- end -}}

{{- define "policy-gateway.keysSecret" -}}
{{- default (printf "%s-keys" (include "policy-gateway.fullname" .)) .Values.keys.existingSecret -}}
{{- end -}}

{{/* The names clients reach the Service by, with and without the port, and loopback
(kubectl port-forward): the Host guard's list (DNS-rebinding protection). */}}
{{- define "policy-gateway.allowedHosts" -}}
{{- $svc := include "policy-gateway.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) -}}
{{- $all := list "127.0.0.1:*" "localhost:*" -}}
{{- range $hosts -}}
{{- $all = append $all . -}}
{{- $all = append $all (printf "%s:%v" . $.Values.service.port) -}}
{{- end -}}
{{- concat $all .Values.gateway.allowedHosts | toJson -}}
{{- end -}}

{{/* What the chart refuses to render, with the reason. */}}
{{- define "policy-gateway.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not (include "policy-gateway.postgres" .)) -}}
{{- fail "replicaCount > 1 needs PostgreSQL: set database.urlSecret.name (a Secret holding the postgresql:// URL); SQLite holds one replica's queue only" -}}
{{- end -}}
{{- if and (not .Values.auth.tokens) (not .Values.auth.oidc) (eq .Values.gateway.anonymous "reject") -}}
{{- fail "no caller could ever be authorised: enable auth.tokens or auth.oidc (or gateway.anonymous=read-only)" -}}
{{- end -}}
{{- if and (or .Values.auth.tokens .Values.auth.oidc) (not .Values.auth.existingSecret) -}}
{{- fail "auth.existingSecret must name the Secret holding tokens.jsonl / oidc-issuer, oidc-audience" -}}
{{- end -}}
{{- if and (not .Values.opa.bundle.server.url) (not .Values.opa.bundle.configMap.name) -}}
{{- fail "OPA needs a policy bundle: opa.bundle.configMap.name or opa.bundle.server.url" -}}
{{- end -}}
{{- if and .Values.opa.bundle.server.url (not .Values.opa.bundle.verification.publicKey) (not .Values.opa.bundle.server.allowUnsigned) -}}
{{- fail "a bundle fetched over the network must be signed: set opa.bundle.verification.publicKey (--set-file opa.bundle.verification.publicKey=bundles/keys/bundle.pub), or opa.bundle.server.allowUnsigned=true" -}}
{{- end -}}
{{- if and (eq .Values.gateway.approvalSignatures "required") (not .Values.auth.allowedSigners) -}}
{{- fail "gateway.approvalSignatures=required needs auth.allowedSigners (the approvers' SSH public keys)" -}}
{{- end -}}
{{- if and .Values.palette.enabled (not .Values.palette.apiKeySecret.name) -}}
{{- fail "palette.enabled needs palette.apiKeySecret.name (a Secret holding the Palette API key)" -}}
{{- end -}}
{{- end -}}
