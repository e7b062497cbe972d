# T012–T015, T022–T023: the Bitnami chart does the StatefulSets, Services, probes, exporter
# sidecars and ServiceMonitor; every setting we change lives in values.yaml.tftpl.
resource "helm_release" "redis_shared" {
  name       = var.release_name
  namespace  = kubernetes_namespace_v1.redis.metadata[0].name
  repository = var.chart_repository
  chart      = "redis"
  version    = var.chart_version

  values = [templatefile("${path.module}/values.yaml.tftpl", local.values_template_vars)]

  # Pods must not start before the password they authenticate with exists.
  depends_on = [kubernetes_secret_v1.credentials]

  # A failed upgrade rolls back instead of leaving half-updated StatefulSets behind.
  atomic          = true
  cleanup_on_fail = true
  wait            = true
  timeout         = 600
}
