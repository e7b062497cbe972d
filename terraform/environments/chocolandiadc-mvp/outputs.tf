output "redis_master_service_dns" {
  description = "In-cluster address applications use."
  value       = module.redis_shared.master_service_dns
}

output "redis_replicas_service_dns" {
  description = "In-cluster address of the read-only replicas."
  value       = module.redis_shared.replicas_service_dns
}

output "redis_port" {
  description = "Redis port."
  value       = module.redis_shared.port
}

output "redis_lb_ip" {
  description = "Private-network address of Redis."
  value       = module.redis_shared.lb_ip
}

output "redis_external_service" {
  description = "LoadBalancer Service name."
  value       = module.redis_shared.external_service_name
}

output "redis_secret_name" {
  description = "Secret holding the password."
  value       = module.redis_shared.secret_name
}

output "redis_secret_namespaces" {
  description = "Namespaces holding a copy of the Secret."
  value       = module.redis_shared.secret_namespaces
}

output "beersystem_migrated" {
  description = "Whether beersystem's environment points at redis-shared."
  value       = var.enable_beersystem_migration
}

output "beersystem_redis_host" {
  description = "REDIS_HOST beersystem receives (null before the migration)."
  value       = var.enable_beersystem_migration ? module.beersystem_migration[0].redis_host : null
}
