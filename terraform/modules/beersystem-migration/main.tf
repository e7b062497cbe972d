# T037/T038, US4: point beersystem at redis-shared by changing only its container environment
# (US4 AS-2, FR-017: configuration, no code change). kubernetes_env patches the Deployment in
# place and owns these three variables only; image, replicas and the other variables stay with
# their current manager. The runbook scales beersystem to 0 first (T035), so the new pod template
# starts only when T040 scales it back up.
#
# Contract of `false` (the resource destroyed): the provider server-side-applies an empty env
# list, so the three variables lose this manager. Entries no other manager owns disappear; what
# another manager still owns stays as it is now. Nothing is restored: the previous values come
# back only through runbook 05 --rollback, which re-applies them from its backup.

# The Deployment as it is before the change, read for the precondition below.
data "kubernetes_resource" "deployment" {
  api_version = "apps/v1"
  kind        = "Deployment"

  metadata {
    name      = var.deployment_name
    namespace = var.namespace
  }
}

locals {
  # A literal REDIS_PASSWORD (env[].value) that another manager owns survives the server-side
  # apply, and the API refuses an env var with both value and valueFrom.
  password_is_literal = anytrue(flatten([
    for c in try(data.kubernetes_resource.deployment.object.spec.template.spec.containers, []) :
    try([for e in c.env : e.name == "REDIS_PASSWORD" && try(length(e.value) > 0, false)], [])
    if c.name == var.container_name
  ]))
}

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

  lifecycle {
    precondition {
      condition     = !local.password_is_literal
      error_message = "REDIS_PASSWORD of container ${var.container_name} in Deployment ${var.namespace}/${var.deployment_name} is a literal value: the API refuses an env var with both value and valueFrom. Remove it first (kubectl set env deployment/${var.deployment_name} -n ${var.namespace} -c ${var.container_name} REDIS_PASSWORD-) while the Deployment is scaled to 0, then apply again."
    }
  }
}
