# US3: the ServiceMonitor comes from the chart (values.yaml.tftpl, metrics.serviceMonitor); the
# alert rules and the dashboard are ours.

# FR-008: alerts.yaml is a PrometheusRule spec (groups: ...) kept as a plain file so promtool
# and the sandbox read exactly what is applied.
resource "kubernetes_manifest" "prometheus_rule" {
  manifest = {
    apiVersion = "monitoring.coreos.com/v1"
    kind       = "PrometheusRule"
    metadata = {
      name      = var.release_name
      namespace = var.monitoring_namespace
      # kube-prometheus-stack's ruleSelector matches its own release label.
      labels = merge(local.common_labels, { release = var.prometheus_release_label })
    }
    spec = yamldecode(templatefile("${path.module}/alerts.yaml", local.alerts_template_vars))
  }

  depends_on = [helm_release.redis_shared]
}

# US3 AS-1: the Grafana sidecar of kube-prometheus-stack loads ConfigMaps labelled
# grafana_dashboard=1 from any namespace it watches.
resource "kubernetes_config_map_v1" "dashboard" {
  metadata {
    name      = "${var.release_name}-dashboard"
    namespace = var.monitoring_namespace
    labels    = merge(local.common_labels, { grafana_dashboard = "1" })
  }

  data = {
    "redis-shared.json" = file("${path.module}/dashboards/redis-shared.json")
  }
}
