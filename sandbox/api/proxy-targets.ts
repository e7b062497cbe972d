// Where the service proxy subresource forwards each Service port; the workload half registers
// the real listeners (Prometheus, the beersystem stand-in) here.
export class ProxyTargets {
  private readonly targets = new Map<string, string>();

  set(namespace: string, service: string, port: number, target: string | undefined): void {
    const key = `${namespace}/${service}/${port}`;
    if (target) this.targets.set(key, target.replace(/\/+$/, ''));
    else this.targets.delete(key);
  }

  get(namespace: string, service: string, port: number): string | undefined {
    return this.targets.get(`${namespace}/${service}/${port}`);
  }
}
