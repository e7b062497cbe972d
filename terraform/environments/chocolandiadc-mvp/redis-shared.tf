# T008 / T009–T015, T022–T023, T026–T027. Validation of every value lives in the modules'
# variables.tf, so it is written once.
module "redis_shared" {
  source = "../../modules/redis-shared"

  namespace                 = var.redis_namespace
  release_name              = var.release_name
  chart_version             = var.chart_version
  lb_ip                     = var.lb_ip
  metallb_pool              = var.metallb_pool
  private_cidr              = var.private_cidr
  secret_name               = var.redis_secret_name
  secret_key                = var.redis_secret_key
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
