# T037/T038, US4: point beersystem at redis-shared by changing only its container environment
# (US4 AS-2, FR-017: configuration, no code change). kubernetes_env patches the Deployment in
# place and owns these three variables only; image, replicas and the other variables stay with
# their current manager. The runbook scales beersystem to 0 first (T035), so the new pod template
# starts only when T040 scales it back up.
resource "kubernetes_env" "beersystem_redis" {
  api_version = "apps/v1"
  kind        = "Deployment"
  container   = var.container_name

  metadata {
    name      = var.deployment_name
    namespace = var.namespace
  }

  env {
    name  = "REDIS_HOST"
    value = var.redis_host
  }

  env {
    name  = "REDIS_PORT"
    value = tostring(var.redis_port)
  }

  # The password is never in the plan or the state of this resource: pods read the Secret.
  env {
    name = "REDIS_PASSWORD"
    value_from {
      secret_key_ref {
        name = var.secret_name
        key  = var.secret_key
      }
    }
  }

  # The old REDIS_HOST was set by kubectl or the app's own manifests; take the fields over.
  force = true
}
