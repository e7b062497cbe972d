locals {
  # FR-012/FR-012a: one Secret name and key, the same in every namespace that holds a copy.
  credentials_secret_name = var.secret_name
  credentials_secret_key  = var.secret_key

  secret_namespaces = toset(concat([var.namespace], var.replica_namespaces))

  common_labels = {
    "app.kubernetes.io/name"       = "redis"
    "app.kubernetes.io/instance"   = var.release_name
    "app.kubernetes.io/part-of"    = "redis-shared"
    "app.kubernetes.io/managed-by" = "opentofu"
  }

  # The Bitnami chart labels its master pod with these; the LoadBalancer selects the master only
  # because replicas refuse writes.
  master_pod_selector = {
    "app.kubernetes.io/name"      = "redis"
    "app.kubernetes.io/instance"  = var.release_name
    "app.kubernetes.io/component" = "master"
  }

  # Every name values.yaml.tftpl interpolates, and nothing else: the tests render the template
  # from this map with the variables' defaults, exactly as templatefile() does.
  values_template_vars = {
    redis_image_repository    = var.redis_image_repository
    redis_image_tag           = var.redis_image_tag
    exporter_image_repository = var.exporter_image_repository
    exporter_image_tag        = var.exporter_image_tag
    secret_name               = local.credentials_secret_name
    secret_key                = local.credentials_secret_key
    replica_count             = var.replica_count
    storage_class             = var.storage_class
    storage_size              = var.storage_size
    master_resources          = var.master_resources
    replica_resources         = var.replica_resources
    exporter_resources        = var.exporter_resources
    maxmemory                 = var.maxmemory
    maxmemory_policy          = var.maxmemory_policy
    maxclients                = var.maxclients
    disabled_commands         = var.disabled_commands
    monitoring_namespace      = var.monitoring_namespace
    client_namespaces         = var.replica_namespaces
    private_cidr              = var.private_cidr
    metrics_interval          = var.metrics_interval
    prometheus_release_label  = var.prometheus_release_label
    release_name              = var.release_name
  }

  # The two names alerts.yaml interpolates (see README: the sandbox substitutes the same two).
  alerts_template_vars = {
    runbook_base_url = var.runbook_base_url
    release_name     = var.release_name
  }
}
