variable "namespace" {
  description = "Namespace of the beersystem Deployment."
  type        = string
  default     = "beersystem"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS-1123 label, e.g. \"beersystem\"."
  }
}

variable "deployment_name" {
  description = "The existing Deployment whose container environment is changed."
  type        = string
  default     = "beersystem"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.deployment_name))
    error_message = "deployment_name must be a DNS-1123 subdomain, e.g. \"beersystem\"."
  }
}

variable "container_name" {
  description = "Container of that Deployment that talks to Redis."
  type        = string
  default     = "beersystem"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.container_name))
    error_message = "container_name must be a DNS-1123 label, e.g. \"beersystem\"."
  }
}

variable "redis_host" {
  description = "Cluster DNS name of the shared Redis master (FR-017)."
  type        = string
  default     = "redis-shared-master.redis.svc.cluster.local"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", var.redis_host))
    error_message = "redis_host must be a DNS name, e.g. \"redis-shared-master.redis.svc.cluster.local\"."
  }
}

variable "redis_port" {
  description = "Redis port of that Service."
  type        = number
  default     = 6379

  validation {
    condition     = var.redis_port == floor(var.redis_port) && var.redis_port >= 1 && var.redis_port <= 65535
    error_message = "redis_port must be a TCP port from 1 to 65535."
  }
}

variable "secret_name" {
  description = "Secret in the beersystem namespace that holds the password (replicated by module redis-shared)."
  type        = string
  default     = "redis-credentials"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.secret_name))
    error_message = "secret_name must be a DNS-1123 subdomain naming the Secret, e.g. \"redis-credentials\"."
  }
}

variable "secret_key" {
  description = "Key of the password inside that Secret."
  type        = string
  default     = "redis-password"

  validation {
    condition     = can(regex("^[-._a-zA-Z0-9]{1,253}$", var.secret_key))
    error_message = "secret_key must be a Secret data key (letters, digits, '-', '_' or '.'), e.g. \"redis-password\"."
  }
}
