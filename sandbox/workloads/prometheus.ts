// The sandbox's Prometheus: a real `prometheus` process fed by prometheus-config.ts, reloaded
// (POST /-/reload) when ServiceMonitors or PrometheusRules change, and standing behind the
// Service `kube-prometheus-stack-prometheus` in `monitoring`, so queries through the API's
// service proxy reach it.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { ClusterAccess, SandboxPlugin, StoreEvent } from '../runtime.ts';
import { PROMETHEUS_SERVICE } from './pod-runtime.ts';
import { httpOk } from './probes.ts';
import { prometheusConfig, prometheusSetup } from './prometheus-config.ts';
import type { WorkloadState } from './state.ts';
import type { SupervisedProcess } from './supervisor.ts';

const PROMETHEUS_PORT = 9090;
const SYNC_DEBOUNCE_MS = 100;
const READY_TIMEOUT_MS = 30_000;
const RESTART_DELAY_MS = 1000;
const WATCHED_KINDS = new Set(['ServiceMonitor', 'PrometheusRule', 'Service', 'Pod']);

export class PrometheusPlugin implements SandboxPlugin {
  readonly name = 'prometheus';
  private readonly state: WorkloadState;
  private readonly dir: string;
  private cluster?: ClusterAccess;
  private process?: SupervisedProcess;
  private unsubscribe?: () => void;
  private timer?: NodeJS.Timeout;
  private syncing = Promise.resolve();
  private ip = '';
  private lastConfig = '';
  private lastRules = '';
  private stopping = false;
  private restartTimer?: NodeJS.Timeout;

  constructor(state: WorkloadState) {
    this.state = state;
    this.dir = join(state.runDir, 'prometheus');
  }

  /** Where Prometheus answers, e.g. http://127.20.1.3:9090. */
  get url(): string {
    return `http://${this.ip}:${PROMETHEUS_PORT}`;
  }

  async start(cluster: ClusterAccess): Promise<void> {
    this.cluster = cluster;
    this.ip = this.state.addresses.podIP(PROMETHEUS_SERVICE.namespace, 'prometheus-sandbox');
    for (const sub of ['targets', 'rules', 'data'])
      mkdirSync(join(this.dir, sub), { recursive: true });
    this.writeFiles();
    this.launch();
    this.state.externalEndpoints.set(`${PROMETHEUS_SERVICE.namespace}/${PROMETHEUS_SERVICE.name}`, {
      ip: this.ip,
      port: PROMETHEUS_PORT,
    });
    this.unsubscribe = cluster.subscribe((event) => this.onEvent(event));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(await httpOk(`${this.url}/-/ready`))) {
      const problem = !this.process?.running
        ? `prometheus exited; see ${this.state.prometheusLog}`
        : Date.now() > deadline
          ? `prometheus did not become ready within 30 s; see ${this.state.prometheusLog}`
          : undefined;
      if (problem) {
        // A plugin whose start fails is not stopped by the API half: stop what this one began.
        await this.stop();
        throw new Error(problem);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Starts prometheus, and starts it again if it dies while the sandbox runs (as its pod would be). */
  private launch(): void {
    const child = this.state.supervisor.spawn({
      name: 'monitoring/prometheus',
      command: 'prometheus',
      args: [
        `--config.file=${join(this.dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(this.dir, 'data')}`,
        '--storage.tsdb.retention.time=2h',
        `--web.listen-address=${this.ip}:${PROMETHEUS_PORT}`,
        '--web.enable-lifecycle',
        '--log.level=info',
      ],
      logFile: this.state.prometheusLog,
    });
    this.process = child;
    child.exited.then(() => {
      if (this.stopping || this.process !== child) return;
      this.restartTimer = setTimeout(() => this.launch(), RESTART_DELAY_MS);
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    await this.syncing;
    this.state.externalEndpoints.delete(
      `${PROMETHEUS_SERVICE.namespace}/${PROMETHEUS_SERVICE.name}`,
    );
    await this.process?.stop();
  }

  /** Regenerates targets and rules now (the store events do this by themselves). */
  sync(): Promise<void> {
    this.syncing = this.syncing.then(async () => {
      if (this.writeFiles() && this.process?.running) {
        await fetch(`${this.url}/-/reload`, { method: 'POST' }).then(
          (r) => r.arrayBuffer(),
          () => undefined,
        );
      }
    });
    return this.syncing;
  }

  private onEvent(event: StoreEvent): void {
    if (!WATCHED_KINDS.has(event.object.kind)) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.sync(), SYNC_DEBOUNCE_MS);
  }

  /** Writes the files; true when Prometheus must reload (config or rules changed). */
  private writeFiles(): boolean {
    const cluster = this.cluster;
    if (!cluster) return false;
    const setup = prometheusSetup(cluster, (namespace, pod) => {
      const running = this.state.pods.get(`${namespace}/${pod}`);
      return running ? running.ip : undefined;
    });
    const targetsDir = join(this.dir, 'targets');
    const rulesDir = join(this.dir, 'rules');
    for (const job of setup.jobs) {
      writeIfChanged(join(targetsDir, job.fileName), JSON.stringify(job.groups, null, 2));
    }
    const rulesText = JSON.stringify(setup.ruleFiles);
    if (rulesText !== this.lastRules) {
      for (const file of readdirSync(rulesDir)) {
        if (!(file in setup.ruleFiles)) rmSync(join(rulesDir, file));
      }
      for (const [file, content] of Object.entries(setup.ruleFiles)) {
        writeFileSync(join(rulesDir, file), stringify(content));
      }
    }
    const config = stringify(prometheusConfig(setup, targetsDir, rulesDir));
    writeIfChanged(join(this.dir, 'prometheus.yml'), config);
    const changed = config !== this.lastConfig || rulesText !== this.lastRules;
    this.lastConfig = config;
    this.lastRules = rulesText;
    return changed;
  }
}

function writeIfChanged(path: string, content: string): void {
  let before: string | undefined;
  try {
    before = readFileSync(path, 'utf8');
  } catch {
    before = undefined;
  }
  if (before !== content) writeFileSync(path, content);
}
