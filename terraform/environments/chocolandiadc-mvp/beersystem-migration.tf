# T037–T039 (phase 6). Off by default so phase 2 and phase 6 apply this same root.
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
