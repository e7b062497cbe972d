# Validation of every value lives in the modules' variables.tf, so it is written once.
module "redis_shared" {
  source = "../../modules/redis-shared"

  namespace                 = var.redis_namespace
  release_name              = var.release_name
  chart_version             = var.chart_version
  lb_ip                     = var.lb_ip
  metallb_pool              = var.metallb_pool
  private_cidr              = var.private_cidr
  replica_namespaces        = var.replica_namespaces
  replica_count             = var.replica_count
  storage_class             = var.storage_class
  storage_size              = var.storage_size
  redis_image_repository    = var.redis_image_repository
  exporter_image_repository = var.exporter_image_repository
  monitoring_namespace      = var.monitoring_namespace
  metrics_interval          = var.metrics_interval
  runbook_base_url          = var.runbook_base_url
}

module "beersystem_migration" {
  source = "../../modules/beersystem-migration"
  count  = var.enable_beersystem_migration ? 1 : 0

  namespace       = var.beersystem_namespace
  deployment_name = var.beersystem_deployment
  container_name  = var.beersystem_container
  redis_host      = module.redis_shared.master_service_dns
  redis_port      = module.redis_shared.port
  secret_name     = module.redis_shared.secret_name
  secret_key      = module.redis_shared.secret_key

  # The Secret copy in beersystem must exist before pods that reference it are scheduled.
  depends_on = [module.redis_shared]
}
