{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "routelens.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, prefixed to the chart name unless it already contains it. */}}
{{- define "routelens.fullname" -}}
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

{{- define "routelens.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "routelens.labels" -}}
helm.sh/chart: {{ include "routelens.chart" . }}
app.kubernetes.io/name: {{ include "routelens.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "gateway"). */}}
{{- define "routelens.selectorLabels" -}}
app.kubernetes.io/name: {{ include "routelens.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "routelens.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "routelens.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "routelens.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The pod spec of one component: (dict "root" $ "component" "gateway" "values" .Values.gateway "env" list).
The image's entrypoint is node with routelens's V8 flags; the config comes from the component's ConfigMap.
*/}}
{{- define "routelens.podSpec" -}}
{{- $root := .root -}}
{{- $v := .values -}}
serviceAccountName: {{ include "routelens.serviceAccountName" $root }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
containers:
  - name: routelens
    image: {{ include "routelens.image" $root }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    args: [run, --config, /etc/routelens/otel-config.yaml]
    {{- $env := concat .env $root.Values.extraEnv }}
    {{- if $v.workers }}
    {{- $env = prepend $env (dict "name" "ROUTELENS_WORKERS" "value" ($v.workers | toString)) }}
    {{- end }}
    {{- with $env }}
    env:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    ports:
      - name: otlp-grpc
        containerPort: 4317
        protocol: TCP
        {{- if .hostPorts }}
        hostPort: 4317
        {{- end }}
      - name: otlp-http
        containerPort: 4318
        protocol: TCP
        {{- if .hostPorts }}
        hostPort: 4318
        {{- end }}
      - { name: query, containerPort: 8888, protocol: TCP }
    readinessProbe:
      httpGet: { path: /healthz, port: query }
    livenessProbe:
      httpGet: { path: /healthz, port: query }
      initialDelaySeconds: 60
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    resources:
      {{- toYaml $v.resources | nindent 6 }}
    volumeMounts:
      - { name: config, mountPath: /etc/routelens, readOnly: true }
      {{- with $root.Values.extraVolumeMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
volumes:
  - name: config
    configMap:
      name: {{ include "routelens.fullname" $root }}-{{ .component }}
  {{- with $root.Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Ports of the component Services. */}}
{{- define "routelens.servicePorts" -}}
- { name: otlp-grpc, port: 4317, targetPort: otlp-grpc, protocol: TCP, appProtocol: grpc }
- { name: otlp-http, port: 4318, targetPort: otlp-http, protocol: TCP }
- { name: query, port: 8888, targetPort: query, protocol: TCP }
{{- end }}

{{/*
What the k8sattributes processors of the enabled components read, as a dict of flags (pods, namespaces, nodes,
replicasets, jobs): the same rules as the processor's requiredRbac (src/processors/k8sattributes/config.ts), so the
ClusterRole grants what the configs need and nothing more. Defaults as in the processor: extract.metadata is the
Collector's default list, labels and annotations are read from the pod.
*/}}
{{- define "routelens.kubeNeeds" -}}
{{- $n := dict -}}
{{- range $component := list "gateway" "agent" }}
{{- $v := index $.Values $component }}
{{- if $v.enabled }}
{{- range $id, $p := ($v.config.processors | default dict) }}
{{- if and (or (eq $id "k8sattributes") (hasPrefix "k8sattributes/" $id)) (not ($p | default dict).passthrough) }}
{{- $extract := ($p | default dict).extract | default dict }}
{{- $md := $extract.metadata | default (list "k8s.namespace.name" "k8s.pod.name" "k8s.pod.uid" "k8s.pod.start_time" "k8s.deployment.name" "k8s.node.name") }}
{{- $_ := set $n "pods" true }}
{{- if or (has "k8s.deployment.uid" $md) (and (has "k8s.deployment.name" $md) (not $extract.deployment_name_from_replicaset)) }}
{{- $_ := set $n "replicasets" true }}
{{- end }}
{{- if has "k8s.cluster.uid" $md }}{{ $_ := set $n "namespaces" true }}{{ end }}
{{- if has "k8s.node.uid" $md }}{{ $_ := set $n "nodes" true }}{{ end }}
{{- if has "k8s.cronjob.uid" $md }}{{ $_ := set $n "jobs" true }}{{ end }}
{{- range concat ($extract.labels | default list) ($extract.annotations | default list) }}
{{- $from := .from | default "pod" }}
{{- if eq $from "namespace" }}{{ $_ := set $n "namespaces" true }}{{ end }}
{{- if eq $from "node" }}{{ $_ := set $n "nodes" true }}{{ end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $n }}
{{- end }}
