# Cluster access
variable "kubeconfig_path" {
  description = "Kubeconfig the providers read."
  type        = string
  default     = "~/.kube/config"

  validation {
    condition     = length(trimspace(var.kubeconfig_path)) > 0
    error_message = "kubeconfig_path must be the path of a kubeconfig file, e.g. \"~/.kube/config\"."
  }
}

variable "kube_context" {
  description = "Kube context to apply to; the runbooks pass the one they pin and check (KUBE_CONTEXT) as -var, which beats every tfvars file."
  type        = string
  default     = "chocolandiadc-mvp"

  # An empty context makes the providers fall back to the kubeconfig's current context, which
  # is exactly the apply-to-the-wrong-cluster accident the explicit context is there to prevent.
  validation {
    condition     = length(trimspace(var.kube_context)) > 0
    error_message = "kube_context must name a context of the kubeconfig, e.g. \"chocolandiadc-mvp\" (an empty value would apply to whatever context is current)."
  }
}

# redis-shared (013-research.md, Decisions 4, 6, 7, 9, 10)
variable "redis_namespace" {
  description = "Namespace of the shared Redis (FR-001)."
  type        = string
  default     = "redis"
}

variable "release_name" {
  description = "Helm release name (FR-017a)."
  type        = string
  default     = "redis-shared"
}

variable "chart_version" {
  description = "Bitnami Redis chart version."
  type        = string
  default     = "23.1.1"
}

variable "lb_ip" {
  description = "MetalLB address of redis-shared-external."
  type        = string
  default     = "192.168.4.203"
}

variable "metallb_pool" {
  description = "MetalLB address pool."
  type        = string
  default     = "eero-pool"
}

variable "private_cidr" {
  description = "The private network allowed through the LoadBalancer."
  type        = string
  default     = "192.168.4.0/24"
}

variable "redis_secret_name" {
  description = "Secret holding the password (the runbooks pass REDIS_SECRET_NAME)."
  type        = string
  default     = "redis-credentials"
}

variable "redis_secret_key" {
  description = "Key of the password in that Secret (the runbooks pass REDIS_SECRET_KEY)."
  type        = string
  default     = "redis-password"
}

variable "replica_namespaces" {
  description = "Namespaces that receive a copy of Secret redis-credentials."
  type        = list(string)
  default     = ["beersystem"]
}

variable "replica_count" {
  description = "Replica instances next to the master (FR-002: 1)."
  type        = number
  default     = 1
}

variable "storage_class" {
  description = "StorageClass of the PVCs."
  type        = string
  default     = "local-path"
}

variable "storage_size" {
  description = "PVC size per instance."
  type        = string
  default     = "10Gi"
}

variable "redis_image_repository" {
  description = "Redis image repository (bitnamilegacy: the chart's default no longer pulls)."
  type        = string
  default     = "bitnamilegacy/redis"
}

variable "exporter_image_repository" {
  description = "redis_exporter image repository."
  type        = string
  default     = "bitnamilegacy/redis-exporter"
}

# Monitoring (kube-prometheus-stack)
variable "monitoring_namespace" {
  description = "Namespace of kube-prometheus-stack."
  type        = string
  default     = "monitoring"
}

variable "metrics_interval" {
  description = "ServiceMonitor scrape interval (SC-005: at most 15s)."
  type        = string
  default     = "15s"
}

variable "runbook_base_url" {
  description = "Browsable URL of checklists/alerts.md, the target of every alert's runbook_url."
  type        = string
  default     = "https://github.com/chocolandiadc/redis-shared-runbooks/blob/main/checklists/alerts.md"
}

# beersystem migration (phase 6). Phase 2 applies with false, phase 6 with true: same root.
variable "enable_beersystem_migration" {
  description = "Point beersystem at redis-shared (T037–T039)."
  type        = bool
  default     = false
}

variable "beersystem_namespace" {
  description = "Namespace of beersystem."
  type        = string
  default     = "beersystem"

  # FR-012a: beersystem's pods read the password through secretKeyRef, which only reaches a
  # Secret in their own namespace; without the copy they would never start after phase 6.
  validation {
    condition     = contains(var.replica_namespaces, var.beersystem_namespace)
    error_message = "beersystem_namespace must be one of replica_namespaces, so the redis-credentials copy its pods read exists there: add it to replica_namespaces, e.g. [\"beersystem\"]."
  }
}

variable "beersystem_deployment" {
  description = "Deployment of beersystem."
  type        = string
  default     = "beersystem"
}

variable "beersystem_container" {
  description = "Container of that Deployment whose REDIS_* environment changes."
  type        = string
  default     = "beersystem"
}
