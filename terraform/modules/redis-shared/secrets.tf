# T009: alphanumeric only, because the password also travels in shell probes and redis:// URLs
# where special characters need quoting that clients get wrong; 32 characters keep ~190 bits.
resource "random_password" "redis" {
  length      = 32
  special     = false
  min_upper   = 4
  min_lower   = 4
  min_numeric = 4

  # No prevent_destroy: a new password is made only by replacing this resource
  # (runbooks/rotate-password.mts plans -replace), which prevent_destroy refuses. A replace by
  # accident cannot happen unnoticed: nothing in it changes without -replace, and every plan is
  # shown before it is applied. The namespace and the Secret copies keep prevent_destroy.
}

# T010/T011, FR-012/FR-012a: the same password in the Redis namespace and in every namespace
# whose pods read it through secretKeyRef (a Secret cannot be referenced across namespaces).
resource "kubernetes_secret_v1" "credentials" {
  for_each = local.secret_namespaces

  metadata {
    name      = local.credentials_secret_name
    namespace = each.key
    labels    = local.common_labels
  }

  type = "Opaque"

  data = {
    (local.credentials_secret_key) = random_password.redis.result
  }

  depends_on = [kubernetes_namespace_v1.redis]

  # A copy removed while pods still reference it (beersystem's REDIS_PASSWORD) stops them from
  # starting: dropping a namespace from replica_namespaces fails the plan instead.
  lifecycle {
    prevent_destroy = true
  }
}
