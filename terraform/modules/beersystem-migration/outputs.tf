output "deployment" {
  description = "The Deployment that was reconfigured, as namespace/name."
  value       = "${var.namespace}/${var.deployment_name}"
}

output "redis_host" {
  description = "REDIS_HOST the container now receives."
  value       = var.redis_host
}

output "redis_port" {
  description = "REDIS_PORT the container now receives."
  value       = var.redis_port
}

output "password_secret_ref" {
  description = "Where REDIS_PASSWORD comes from (secretKeyRef)."
  value       = { name = var.secret_name, key = var.secret_key }
}
