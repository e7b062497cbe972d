import type { KindRef } from '../runtime.ts';

export const POD: KindRef = { group: '', version: 'v1', kind: 'Pod' };
export const SERVICE: KindRef = { group: '', version: 'v1', kind: 'Service' };
export const ENDPOINTS: KindRef = { group: '', version: 'v1', kind: 'Endpoints' };
export const SECRET: KindRef = { group: '', version: 'v1', kind: 'Secret' };
export const CONFIG_MAP: KindRef = { group: '', version: 'v1', kind: 'ConfigMap' };
export const STATEFUL_SET: KindRef = { group: 'apps', version: 'v1', kind: 'StatefulSet' };
export const SERVICE_MONITOR: KindRef = {
  group: 'monitoring.coreos.com',
  version: 'v1',
  kind: 'ServiceMonitor',
};
export const PROMETHEUS_RULE: KindRef = {
  group: 'monitoring.coreos.com',
  version: 'v1',
  kind: 'PrometheusRule',
};
export const IP_ADDRESS_POOL: KindRef = {
  group: 'metallb.io',
  version: 'v1beta1',
  kind: 'IPAddressPool',
};
export const L2_ADVERTISEMENT: KindRef = {
  group: 'metallb.io',
  version: 'v1beta1',
  kind: 'L2Advertisement',
};
export const BGP_ADVERTISEMENT: KindRef = {
  group: 'metallb.io',
  version: 'v1beta1',
  kind: 'BGPAdvertisement',
};
