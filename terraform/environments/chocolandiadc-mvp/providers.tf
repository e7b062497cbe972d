# The context is named explicitly so an apply never lands on whatever context is current.
provider "kubernetes" {
  config_path    = pathexpand(var.kubeconfig_path)
  config_context = var.kube_context
  # MetalLB writes the pool it allocated from onto redis-shared-external; the provider ignores
  # only *kubernetes.io annotations by itself, so without this every plan would remove it, and
  # 05-migrate's plan (which may change the migration module only) would stop on that diff.
  ignore_annotations = ["^metallb\\.(io|universe\\.tf)/ip-allocated-from-pool$"]
}

provider "helm" {
  kubernetes {
    config_path    = pathexpand(var.kubeconfig_path)
    config_context = var.kube_context
  }
}

provider "random" {}
