variable "namespace" {
  description = "Namespace of the shared Redis (FR-001)."
  type        = string
  default     = "redis"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters, e.g. \"redis\"."
  }
}

variable "release_name" {
  description = "Helm release name; the chart names its Services after it (redis-shared-master, FR-017a)."
  type        = string
  default     = "redis-shared"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$", var.release_name))
    error_message = "release_name must be a DNS-1123 label of at most 53 characters (Helm's limit), e.g. \"redis-shared\"."
  }
}

variable "chart_repository" {
  description = "Where the Bitnami Redis chart comes from. The OCI registry keeps every version; the classic https://charts.bitnami.com index drops old ones, so a pinned version stops resolving there."
  type        = string
  default     = "oci://registry-1.docker.io/bitnamicharts"

  validation {
    condition     = can(regex("^(https://|oci://)", var.chart_repository))
    error_message = "chart_repository must be an https:// or oci:// URL, e.g. \"oci://registry-1.docker.io/bitnamicharts\"."
  }
}

variable "chart_version" {
  description = "Exact Bitnami Redis chart version; values.yaml.tftpl is checked against this version's values file."
  type        = string
  default     = "23.1.1"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.chart_version))
    error_message = "chart_version must be an exact version such as \"23.1.1\" (no ranges: the values are checked against one chart)."
  }
}

variable "redis_image_repository" {
  description = "Redis image repository. The chart's default (bitnami/redis) stopped being pullable in August 2025."
  type        = string
  default     = "bitnamilegacy/redis"

  validation {
    condition     = can(regex("^[a-z0-9]+([._/-][a-z0-9]+)*$", var.redis_image_repository))
    error_message = "redis_image_repository must be an image repository without tag, e.g. \"bitnamilegacy/redis\"."
  }
}

variable "redis_image_tag" {
  description = "Redis image tag (the chart 23.1.1 default, which bitnamilegacy still serves)."
  type        = string
  default     = "8.2.1-debian-12-r0"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.redis_image_tag))
    error_message = "redis_image_tag must be a Docker tag, e.g. \"8.2.1-debian-12-r0\"."
  }
}

variable "exporter_image_repository" {
  description = "redis_exporter image repository (bitnami/redis-exporter is no longer pullable)."
  type        = string
  default     = "bitnamilegacy/redis-exporter"

  validation {
    condition     = can(regex("^[a-z0-9]+([._/-][a-z0-9]+)*$", var.exporter_image_repository))
    error_message = "exporter_image_repository must be an image repository without tag, e.g. \"bitnamilegacy/redis-exporter\"."
  }
}

variable "exporter_image_tag" {
  description = "redis_exporter image tag (the chart 23.1.1 default)."
  type        = string
  default     = "1.76.0-debian-12-r0"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.exporter_image_tag))
    error_message = "exporter_image_tag must be a Docker tag, e.g. \"1.76.0-debian-12-r0\"."
  }
}

variable "secret_name" {
  description = "Name of the Secret holding the password, in the Redis namespace and every replica_namespaces entry (the runbooks read it as REDIS_SECRET_NAME)."
  type        = string
  default     = "redis-credentials"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.secret_name))
    error_message = "secret_name must be a DNS-1123 subdomain naming the Secret, e.g. \"redis-credentials\"."
  }
}

variable "secret_key" {
  description = "Key of the password inside that Secret (the runbooks read it as REDIS_SECRET_KEY)."
  type        = string
  default     = "redis-password"

  validation {
    condition     = can(regex("^[-._a-zA-Z0-9]{1,253}$", var.secret_key))
    error_message = "secret_key must be a Secret data key (letters, digits, '-', '_' or '.'), e.g. \"redis-password\"."
  }
}

variable "replica_namespaces" {
  description = "Client namespaces: each receives a copy of Secret redis-credentials (FR-012a) and its pods are admitted by the NetworkPolicy on 6379. They must exist already."
  type        = list(string)
  default     = ["beersystem"]

  validation {
    condition     = alltrue([for ns in var.replica_namespaces : can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", ns))])
    error_message = "replica_namespaces must hold DNS-1123 labels only, e.g. [\"beersystem\"]."
  }
}

variable "replica_count" {
  description = "Replica instances next to the one master. FR-002 asks for exactly two instances in total, hence 1."
  type        = number
  default     = 1

  validation {
    condition     = var.replica_count == floor(var.replica_count) && var.replica_count >= 1 && var.replica_count <= 3
    error_message = "replica_count must be a whole number from 1 to 3 (FR-002 asks for 1: one master plus one replica)."
  }
}

variable "storage_class" {
  description = "StorageClass of both roles' PVCs (FR-007)."
  type        = string
  default     = "local-path"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.storage_class))
    error_message = "storage_class must name a StorageClass, e.g. \"local-path\"."
  }
}

variable "storage_size" {
  description = "PVC size of each instance (FR-007; the chart's default is 8Gi)."
  type        = string
  default     = "10Gi"

  validation {
    condition     = can(regex("^[1-9][0-9]*(Mi|Gi|Ti)$", var.storage_size))
    error_message = "storage_size must be a whole binary quantity such as \"10Gi\" or \"512Mi\"."
  }
}

variable "master_resources" {
  description = "Requests and limits of the master container (013-research.md, Decision 7)."
  type = object({
    requests = object({ cpu = string, memory = string })
    limits   = object({ cpu = string, memory = string })
  })
  default = {
    requests = { cpu = "500m", memory = "1Gi" }
    limits   = { cpu = "1000m", memory = "2Gi" }
  }

  validation {
    condition = alltrue([
      for q in [var.master_resources.requests.cpu, var.master_resources.limits.cpu] : can(regex("^([0-9]+m|[0-9]+(\\.[0-9]+)?)$", q))
      ]) && alltrue([
      for q in [var.master_resources.requests.memory, var.master_resources.limits.memory] : can(regex("^[1-9][0-9]*(Ki|Mi|Gi)$", q))
    ])
    error_message = "master_resources needs CPU like \"500m\" or \"1\" and memory like \"1Gi\" or \"512Mi\" for both requests and limits."
  }
}

variable "replica_resources" {
  description = "Requests and limits of each replica container (013-research.md, Decision 7)."
  type = object({
    requests = object({ cpu = string, memory = string })
    limits   = object({ cpu = string, memory = string })
  })
  default = {
    requests = { cpu = "250m", memory = "1Gi" }
    limits   = { cpu = "1000m", memory = "2Gi" }
  }

  validation {
    condition = alltrue([
      for q in [var.replica_resources.requests.cpu, var.replica_resources.limits.cpu] : can(regex("^([0-9]+m|[0-9]+(\\.[0-9]+)?)$", q))
      ]) && alltrue([
      for q in [var.replica_resources.requests.memory, var.replica_resources.limits.memory] : can(regex("^[1-9][0-9]*(Ki|Mi|Gi)$", q))
    ])
    error_message = "replica_resources needs CPU like \"250m\" or \"1\" and memory like \"1Gi\" or \"512Mi\" for both requests and limits."
  }
}

variable "exporter_resources" {
  description = "Requests and limits of the redis_exporter sidecar (013-research.md, Decision 7)."
  type = object({
    requests = object({ cpu = string, memory = string })
    limits   = object({ cpu = string, memory = string })
  })
  default = {
    requests = { cpu = "50m", memory = "64Mi" }
    limits   = { cpu = "100m", memory = "128Mi" }
  }

  validation {
    condition = alltrue([
      for q in [var.exporter_resources.requests.cpu, var.exporter_resources.limits.cpu] : can(regex("^([0-9]+m|[0-9]+(\\.[0-9]+)?)$", q))
      ]) && alltrue([
      for q in [var.exporter_resources.requests.memory, var.exporter_resources.limits.memory] : can(regex("^[1-9][0-9]*(Ki|Mi|Gi)$", q))
    ])
    error_message = "exporter_resources needs CPU like \"50m\" and memory like \"64Mi\" for both requests and limits."
  }
}

variable "maxmemory" {
  description = "Redis maxmemory. Half the 2Gi limit: an AOF rewrite forks, and copy-on-write can double the footprint."
  type        = string
  default     = "1gb"

  validation {
    condition     = can(regex("^[1-9][0-9]*(mb|gb)$", var.maxmemory))
    error_message = "maxmemory must be a Redis size such as \"1gb\" or \"768mb\", below the container memory limit."
  }
}

variable "maxmemory_policy" {
  description = "Eviction policy (013-research.md: allkeys-lru for a cache)."
  type        = string
  default     = "allkeys-lru"

  validation {
    condition     = contains(["allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "noeviction"], var.maxmemory_policy)
    error_message = "maxmemory_policy must be one of Redis' policies, e.g. \"allkeys-lru\"."
  }
}

variable "maxclients" {
  description = "Redis maxclients; the connection alerts are ratios of it."
  type        = number
  default     = 10000

  validation {
    condition     = var.maxclients == floor(var.maxclients) && var.maxclients >= 100 && var.maxclients <= 65000
    error_message = "maxclients must be a whole number from 100 to 65000."
  }
}

variable "disabled_commands" {
  description = "Commands renamed away on both roles. CONFIG stays: redis_exporter reads maxclients through CONFIG GET and the runbooks verify persistence with it."
  type        = list(string)
  default     = ["FLUSHDB", "FLUSHALL", "SHUTDOWN"]

  validation {
    condition     = alltrue([for c in var.disabled_commands : can(regex("^[A-Z]+$", c))]) && !contains(var.disabled_commands, "CONFIG")
    error_message = "disabled_commands must be upper-case command names without CONFIG (redis_exporter and the runbooks read CONFIG GET), e.g. [\"FLUSHDB\", \"FLUSHALL\", \"SHUTDOWN\"]."
  }
}

variable "lb_ip" {
  description = "MetalLB address of Service redis-shared-external (013-research.md: 192.168.4.203)."
  type        = string
  default     = "192.168.4.203"

  validation {
    condition     = can(regex("^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$", var.lb_ip))
    error_message = "lb_ip must be an IPv4 address such as \"192.168.4.203\"."
  }

  # FR-004: an address outside the private network would be unreachable from it, or public.
  validation {
    condition     = try(cidrhost("${var.lb_ip}/${split("/", var.private_cidr)[1]}", 0) == cidrhost(var.private_cidr, 0), false)
    error_message = "lb_ip must lie inside private_cidr (e.g. 192.168.4.203 inside 192.168.4.0/24)."
  }
}

variable "metallb_pool" {
  description = "MetalLB IPAddressPool the address comes from."
  type        = string
  default     = "eero-pool"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.metallb_pool))
    error_message = "metallb_pool must name a MetalLB IPAddressPool, e.g. \"eero-pool\"."
  }
}

variable "private_cidr" {
  description = "The only network allowed through the LoadBalancer (loadBalancerSourceRanges, FR-005)."
  type        = string
  default     = "192.168.4.0/24"

  validation {
    condition     = can(regex("^([0-9]{1,3}\\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$", var.private_cidr)) && try(cidrhost(var.private_cidr, 0) == split("/", var.private_cidr)[0], false)
    error_message = "private_cidr must be an IPv4 network in CIDR form with no host bits set, e.g. \"192.168.4.0/24\"."
  }

  # FR-005: 0.0.0.0/0 or any public range would expose Redis beyond the private network.
  # Loopback (127/8) is accepted too: it never leaves the host, and the sandbox rehearses on it.
  validation {
    condition = try(anytrue([
      for net in ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8"] :
      tonumber(split("/", var.private_cidr)[1]) >= tonumber(split("/", net)[1]) && cidrhost("${split("/", var.private_cidr)[0]}/${split("/", net)[1]}", 0) == cidrhost(net, 0)
    ]), false)
    error_message = "private_cidr must lie inside an RFC 1918 private range (10/8, 172.16/12, 192.168/16) or loopback (127/8), e.g. \"192.168.4.0/24\"; Redis must never be reachable from the internet."
  }
}

variable "monitoring_namespace" {
  description = "Namespace of kube-prometheus-stack: the ServiceMonitor, PrometheusRule and dashboard go there."
  type        = string
  default     = "monitoring"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.monitoring_namespace))
    error_message = "monitoring_namespace must be a DNS-1123 label, e.g. \"monitoring\"."
  }
}

variable "metrics_interval" {
  description = "ServiceMonitor scrape interval. SC-005 wants metrics every 15 s or less (the chart's default is 30s)."
  type        = string
  default     = "15s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.metrics_interval)) && try(tonumber(trimsuffix(var.metrics_interval, "s")) >= 5 && tonumber(trimsuffix(var.metrics_interval, "s")) <= 15, false)
    error_message = "metrics_interval must be between \"5s\" and \"15s\" (SC-005: updates every 15 seconds or less)."
  }
}

variable "prometheus_release_label" {
  description = "Value of the release label kube-prometheus-stack selects ServiceMonitors and PrometheusRules by."
  type        = string
  default     = "kube-prometheus-stack"

  validation {
    condition     = length(var.prometheus_release_label) > 0
    error_message = "prometheus_release_label must be the Helm release name of kube-prometheus-stack, e.g. \"kube-prometheus-stack\"."
  }
}

variable "runbook_base_url" {
  description = "Browsable URL of checklists/alerts.md; each alert's runbook_url is this plus an anchor."
  type        = string
  default     = "https://github.com/chocolandiadc/redis-shared-runbooks/blob/main/checklists/alerts.md"

  validation {
    condition     = can(regex("^https?://[^#\\s]+$", var.runbook_base_url))
    error_message = "runbook_base_url must be an http(s) URL without a fragment (the alerts append #<alert-name>), e.g. \"https://git.example.org/runbooks/checklists/alerts.md\"."
  }
}
