# T001 / FR-001: a namespace of its own, apart from beersystem and its old "redis" Service.
resource "kubernetes_namespace_v1" "redis" {
  metadata {
    name = var.namespace
    labels = merge(local.common_labels, {
      name = var.namespace
      type = "shared-service"
    })
  }

  # Deleting the namespace deletes the PVCs with Redis' data in them. A destroy must fail here;
  # the teardown path is in the README ("Teardown").
  lifecycle {
    prevent_destroy = true
  }
}
