# T026/T027, FR-004/FR-005: the private network reaches the master through MetalLB. Address and
# pool are given only as metallb.io annotations: MetalLB's controller refuses a Service that also
# sets spec.loadBalancerIP ("service can not have both metallb.io/loadBalancerIPs and
# svc.Spec.LoadBalancerIP", metallb/metallb controller/service.go, getDesiredLbIPs) and reads the
# deprecated metallb.universe.tf/ names as the same annotations. Only the metallb.io/ prefix is
# written: MetalLB reads it from v0.14.9 (commit fc863ccd3) and reports each metallb.universe.tf/
# annotation as a deprecatedAnnotation Warning, so 01-setup's P07 refuses an older controller
# (its image tag) with the upgrade to run, rather than this module writing both prefixes.
resource "kubernetes_service_v1" "external" {
  metadata {
    name      = "${var.release_name}-external"
    namespace = kubernetes_namespace_v1.redis.metadata[0].name
    labels    = merge(local.common_labels, { "app.kubernetes.io/component" = "external" })
    annotations = {
      "metallb.io/address-pool"    = var.metallb_pool
      "metallb.io/loadBalancerIPs" = var.lb_ip
    }
  }

  spec {
    type = "LoadBalancer"
    # SC-004: anything outside the private network is dropped before it reaches Redis.
    load_balancer_source_ranges = [var.private_cidr]
    # Local keeps the client's source address, which is what the source ranges are checked on.
    external_traffic_policy = "Local"
    # FR-005: a LoadBalancer otherwise opens a NodePort on every node, and the source ranges
    # guard only the LB address, not <node IP>:<node port>. MetalLB needs no NodePort.
    allocate_load_balancer_node_ports = false
    selector                          = local.master_pod_selector

    port {
      name        = "tcp-redis"
      port        = 6379
      target_port = "redis"
      protocol    = "TCP"
    }
  }

  depends_on = [helm_release.redis_shared]
}
