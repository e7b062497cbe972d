output "namespace" {
  description = "Namespace of the shared Redis."
  value       = kubernetes_namespace_v1.redis.metadata[0].name
}

output "release_name" {
  description = "Helm release name."
  value       = helm_release.redis_shared.name
}

output "master_service_dns" {
  description = "In-cluster DNS name applications write to (FR-003, FR-017)."
  value       = "${var.release_name}-master.${var.namespace}.svc.cluster.local"
}

output "replicas_service_dns" {
  description = "In-cluster DNS name of the read-only replicas."
  value       = "${var.release_name}-replicas.${var.namespace}.svc.cluster.local"
}

output "port" {
  description = "Redis port on every Service."
  value       = 6379
}

output "external_service_name" {
  description = "LoadBalancer Service for the private network."
  value       = kubernetes_service_v1.external.metadata[0].name
}

output "lb_ip" {
  description = "Private-network address of Redis (FR-004)."
  value       = var.lb_ip
}

output "secret_name" {
  description = "Secret holding the password, in every namespace of secret_namespaces."
  value       = local.credentials_secret_name
}

output "secret_key" {
  description = "Key of the password inside the Secret."
  value       = local.credentials_secret_key
}

output "secret_namespaces" {
  description = "Namespaces holding a copy of the Secret (FR-012, FR-012a)."
  value       = sort(keys(kubernetes_secret_v1.credentials))
}
