# T001 / FR-001: a namespace of its own, apart from beersystem and its old "redis" Service.
resource "kubernetes_namespace_v1" "redis" {
  metadata {
    name = var.namespace
    labels = merge(local.common_labels, {
      name = var.namespace
      type = "shared-service"
    })
  }
}
