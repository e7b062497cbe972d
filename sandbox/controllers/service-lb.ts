// K3s's built-in ServiceLB (klipper-lb), off unless SandboxOptions.serviceLb: as K3s's servicelb
// controller (k3s-io/k3s pkg/cloudprovider/servicelb.go) it takes every LoadBalancer Service
// without a spec.loadBalancerClass, creates a DaemonSet `svclb-<service>-<first 8 of its uid>` in
// kube-system (labels svccontroller.k3s.cattle.io/svcname and /svcnamespace, one klipper-lb
// container per port with that port as hostPort) and writes the nodes' addresses (ExternalIP, else
// InternalIP) into the Service's status — over what MetalLB wrote, which is how the two fight on
// a K3s cluster started without `--disable servicelb`. The DaemonSets' pods are not run (there is
// no DaemonSet controller), so nothing answers on the nodes' hostPorts.
import type { Store, StoreChange } from '../api/store.ts';
import type { KubeObject } from '../runtime.ts';
import { WorkQueue } from './queue.ts';
import type { Controller } from './workload-base.ts';
import { typeOf } from './workload-base.ts';

export const SVCLB_NAMESPACE = 'kube-system';
export const SVCNAME_LABEL = 'svccontroller.k3s.cattle.io/svcname';
export const SVCNAMESPACE_LABEL = 'svccontroller.k3s.cattle.io/svcnamespace';
/** The klipper-lb image K3s runs the svclb pods with (as a K3s pod description shows it). */
const KLIPPER_LB_IMAGE = 'rancher/klipper-lb:v0.4.9';

export function svclbName(svc: KubeObject): string {
  return `svclb-${svc.metadata.name}-${String(svc.metadata.uid ?? '').slice(0, 8)}`;
}

/** The nodes' addresses as servicelb writes them: ExternalIP when a node has one, else InternalIP. */
function nodeAddresses(nodes: KubeObject[]): string[] {
  const out = new Set<string>();
  for (const node of nodes) {
    const addresses: Array<{ type: string; address: string }> = node.status?.addresses ?? [];
    const external = addresses.find((a) => a.type === 'ExternalIP');
    const internal = addresses.find((a) => a.type === 'InternalIP');
    const address = (external ?? internal)?.address;
    if (address) out.add(address);
  }
  return [...out].sort();
}

export class ServiceLbController implements Controller {
  private readonly serviceType;
  private readonly nodeType;
  private readonly daemonSetType;
  private readonly queue: WorkQueue;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly store: Store) {
    this.serviceType = typeOf(store, '', 'Service');
    this.nodeType = typeOf(store, '', 'Node');
    this.daemonSetType = typeOf(store, 'apps', 'DaemonSet');
    this.queue = new WorkQueue('ServiceLB', () => this.reconcileAll());
  }

  start(): void {
    this.unsubscribe = this.store.subscribe((change: StoreChange) => {
      if (change.resource === this.serviceType || change.resource === this.nodeType) {
        this.queue.add('all');
      }
    });
    this.queue.add('all');
  }

  stop(): void {
    this.unsubscribe?.();
    this.queue.stop();
  }

  private reconcileAll(): void {
    const nodes = this.store.list(this.nodeType);
    const ingress = nodeAddresses(nodes).map((ip) => ({ ip, ipMode: 'VIP' }));
    const wanted = new Set<string>();
    for (const svc of this.store.list(this.serviceType)) {
      if (svc.spec?.type !== 'LoadBalancer' || svc.spec?.loadBalancerClass) continue;
      const name = svclbName(svc);
      wanted.add(name);
      if (!this.store.get(this.daemonSetType, SVCLB_NAMESPACE, name)) {
        this.store.create(this.daemonSetType, this.daemonSet(svc, nodes.length));
      }
      const current = JSON.stringify(svc.status?.loadBalancer?.ingress ?? []);
      if (current !== JSON.stringify(ingress)) {
        this.store.mutate(
          this.serviceType,
          svc.metadata.namespace,
          svc.metadata.name,
          (o) => {
            o.status = { ...(o.status ?? {}), loadBalancer: { ingress } };
          },
          'status',
        );
      }
    }
    for (const ds of this.store.list(this.daemonSetType, SVCLB_NAMESPACE)) {
      if (ds.metadata.labels?.[SVCNAME_LABEL] && !wanted.has(ds.metadata.name)) {
        this.store.delete(this.daemonSetType, SVCLB_NAMESPACE, ds.metadata.name);
      }
    }
  }

  private daemonSet(svc: KubeObject, nodeCount: number): KubeObject {
    const name = svclbName(svc);
    const labels = {
      app: name,
      [SVCNAME_LABEL]: svc.metadata.name,
      [SVCNAMESPACE_LABEL]: svc.metadata.namespace ?? 'default',
    };
    const ports: Array<{ port: number; protocol?: string }> = svc.spec?.ports ?? [];
    return {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name, namespace: SVCLB_NAMESPACE, labels },
      spec: {
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'svclb',
            priorityClassName: 'system-node-critical',
            containers: ports.map((p) => {
              const proto = (p.protocol ?? 'TCP').toLowerCase();
              return {
                name: `lb-${proto}-${p.port}`,
                image: KLIPPER_LB_IMAGE,
                ports: [
                  {
                    name: `lb-${proto}-${p.port}`,
                    containerPort: p.port,
                    hostPort: p.port,
                    protocol: p.protocol ?? 'TCP',
                  },
                ],
                env: [
                  { name: 'SRC_PORT', value: String(p.port) },
                  {
                    name: 'SRC_RANGES',
                    value: (svc.spec?.loadBalancerSourceRanges ?? ['0.0.0.0/0']).join(' '),
                  },
                  { name: 'DEST_PROTO', value: p.protocol ?? 'TCP' },
                  { name: 'DEST_PORT', value: String(p.port) },
                  { name: 'DEST_IPS', value: String(svc.spec?.clusterIP ?? '') },
                ],
              };
            }),
          },
        },
      },
      status: {
        desiredNumberScheduled: nodeCount,
        currentNumberScheduled: nodeCount,
        numberReady: nodeCount,
        numberAvailable: nodeCount,
      },
    };
  }
}
