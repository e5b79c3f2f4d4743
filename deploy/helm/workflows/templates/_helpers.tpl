{{/* Names and labels. */}}
{{- define "workflows.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "workflows.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "workflows.labels" -}}
{{ include "workflows.selectorLabels" . }}
app.kubernetes.io/part-of: workflows
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "workflows.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{/* The non-secret settings: files/settings.env (the file kustomize and compose read) + .Values.settings. */}}
{{- define "workflows.settings" -}}
{{- $out := dict -}}
{{- range $line := splitList "\n" (.Files.Get "files/settings.env") -}}
{{- $l := trim $line -}}
{{- if and $l (not (hasPrefix "#" $l)) -}}
{{- $kv := splitn "=" 2 $l -}}
{{- $_ := set $out $kv._0 (default "" $kv._1) -}}
{{- end -}}
{{- end -}}
{{- if .Values.kafka.strimzi.topics.enabled -}}
{{- $_ := set $out "WF_KAFKA_CREATE_TOPICS" "false" -}}
{{- end -}}
{{- if not .Values.database.preparedStatements -}}
{{- $_ := set $out "WF_DB_PREPARED_STATEMENTS" "false" -}}
{{- end -}}
{{- range $k, $v := .Values.settings -}}
{{- $_ := set $out $k (toString $v) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{- define "workflows.kafkaTLS" -}}
{{- if has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") }}true{{ end -}}
{{- end -}}
{{- define "workflows.kafkaSASL" -}}
{{- if has .Values.kafka.securityProtocol (list "SASL_PLAINTEXT" "SASL_SSL") }}true{{ end -}}
{{- end -}}
{{- define "workflows.kafkaUser" -}}
{{- .Values.kafka.sasl.username | default (ternary .Values.kafka.strimzi.user.name "" .Values.kafka.strimzi.user.enabled) -}}
{{- end -}}
{{- define "workflows.kafkaPasswordSecret" -}}
{{- .Values.kafka.sasl.passwordSecret.name | default (ternary .Values.kafka.strimzi.user.name "" (and .Values.kafka.strimzi.user.enabled (ne .Values.kafka.strimzi.user.authentication "tls"))) -}}
{{- end -}}
{{- define "workflows.kafkaClientSecret" -}}
{{- .Values.kafka.tls.clientSecret.name | default (ternary .Values.kafka.strimzi.user.name "" (and .Values.kafka.strimzi.user.enabled (eq .Values.kafka.strimzi.user.authentication "tls"))) -}}
{{- end -}}

{{/* Environment every container gets besides the ConfigMap: secrets by reference, Kafka security. */}}
{{- define "workflows.env" -}}
{{- $db := .Values.database -}}
{{- if $db.urlSecret.name }}
- name: WF_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $db.urlSecret.name }}
      key: {{ $db.urlSecret.key }}
{{- else }}
- name: WORKFLOWS_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "database.passwordSecret.name (or database.urlSecret.name) is required" $db.passwordSecret.name }}
      key: {{ $db.passwordSecret.key }}
- name: WF_DATABASE_URL
  value: {{ printf "postgresql+psycopg://%s:$(WORKFLOWS_DB_PASSWORD)@%s:%v/%s" $db.user (required "database.host is required" $db.host) $db.port $db.name | quote }}
{{- end }}
- name: WF_KAFKA_SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
{{- if include "workflows.kafkaSASL" . }}
- name: WF_KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
- name: WF_KAFKA_SASL_USERNAME
  value: {{ required "kafka.sasl.username is required with SASL" (include "workflows.kafkaUser" .) | quote }}
- name: WF_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.passwordSecret.name is required with SASL" (include "workflows.kafkaPasswordSecret" .) }}
      key: {{ .Values.kafka.sasl.passwordSecret.key }}
{{- end }}
{{- if include "workflows.kafkaTLS" . }}
{{- if .Values.kafka.tls.caSecret.name }}
- name: WF_KAFKA_SSL_CA_FILE
  value: /etc/workflows/kafka-ca/{{ .Values.kafka.tls.caSecret.key }}
{{- end }}
{{- if include "workflows.kafkaClientSecret" . }}
- name: WF_KAFKA_SSL_CERT_FILE
  value: /etc/workflows/kafka-client/{{ .Values.kafka.tls.clientSecret.certKey }}
- name: WF_KAFKA_SSL_KEY_FILE
  value: /etc/workflows/kafka-client/{{ .Values.kafka.tls.clientSecret.keyKey }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "workflows.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if include "workflows.kafkaTLS" . }}
{{- if .Values.kafka.tls.caSecret.name }}
- name: kafka-ca
  mountPath: /etc/workflows/kafka-ca
  readOnly: true
{{- end }}
{{- if include "workflows.kafkaClientSecret" . }}
- name: kafka-client
  mountPath: /etc/workflows/kafka-client
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{- define "workflows.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- if include "workflows.kafkaTLS" . }}
{{- if .Values.kafka.tls.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret.name }}
    items:
      - key: {{ .Values.kafka.tls.caSecret.key }}
        path: {{ .Values.kafka.tls.caSecret.key }}
{{- end }}
{{- with include "workflows.kafkaClientSecret" . }}
- name: kafka-client
  secret:
    secretName: {{ . }}
    defaultMode: 0400
{{- end }}
{{- end }}
{{- end -}}

{{/* Database connections one pod of a service opens at most (shared/db/budget.py says why). */}}
{{- define "workflows.podConnections" -}}
{{- $c := index .root.Values .component -}}
{{- if eq .component "health" -}}
{{- add 4 $c.db.maxOverflow -}}
{{- else if eq .component "dispatcher" -}}
{{- add $c.db.poolSize $c.db.maxOverflow 1 -}}
{{- else -}}
{{- mul 2 (add $c.db.poolSize $c.db.maxOverflow) -}}
{{- end -}}
{{- end -}}

{{- define "workflows.maxReplicas" -}}
{{- $c := index .root.Values .component -}}
{{- if $c.autoscaling.enabled -}}
{{- $c.autoscaling.maxReplicas -}}
{{- else -}}
{{- $c.replicas -}}
{{- end -}}
{{- end -}}
