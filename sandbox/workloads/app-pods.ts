// Pods that are not Redis: the beersystem stand-in app, Jobs (their command run locally), and
// anything else (a process that stays up).
import { fileURLToPath } from 'node:url';
import type { ClusterAccess, KubeObject, RunningPod } from '../runtime.ts';
import { type ContainerSpec, expandReferences, resolveEnv } from './pod-env.ts';
import { killBackoff, launchPod } from './pod-process.ts';
import { httpOk } from './probes.ts';
import type { WorkloadState } from './state.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** Starts a sandbox program from its cached bundle (sandbox/launch.mjs). */
const LAUNCH = `${REPO}sandbox/launch.mjs`;
const BEERSYSTEM_APP = `${REPO}sandbox/beersystem/app.ts`;
const BEERSYSTEM_PORT = 8080;

/** What every pod starter needs first: where the pod lives, its main container, its log. */
function podBasics(pod: KubeObject, state: WorkloadState) {
  const namespace = pod.metadata.namespace ?? 'default';
  const name = pod.metadata.name;
  const container: ContainerSpec = pod.spec?.containers?.[0] ?? {};
  return { namespace, name, container, logFile: state.logFile(namespace, name) };
}

export function startBeersystemPod(
  pod: KubeObject,
  cluster: ClusterAccess,
  state: WorkloadState,
): RunningPod {
  const { namespace, name, container, logFile } = podBasics(pod, state);
  const port = container.ports?.[0]?.containerPort ?? BEERSYSTEM_PORT;
  const started = Date.now();
  return launchPod({
    state,
    pod,
    cluster,
    logFile,
    delayMs: killBackoff(state, namespace, name),
    startMain: (record) =>
      state.supervisor.spawn({
        name: `${namespace}/${name}`,
        command: process.execPath,
        args: [LAUNCH, BEERSYSTEM_APP],
        env: {
          ...resolveEnv(container, { pod, podIP: record.ip, cluster }),
          LISTEN_HOST: record.ip,
          LISTEN_PORT: String(port),
        },
        logFile,
        hostsFile: state.hosts.pathFor(namespace),
      }),
    probe: (record) => {
      if (Date.now() - started < (state.slowReadyMs.get(namespace) ?? 0)) {
        return Promise.resolve(false);
      }
      const failOn = state.notReadyOn.get(namespace);
      const redisHost = String(
        resolveEnv(container, { pod, podIP: record.ip, cluster }).REDIS_HOST ?? '',
      );
      if (failOn && redisHost.includes(failOn)) return Promise.resolve(false);
      return httpOk(`http://${record.ip}:${port}/healthz`);
    },
  });
}

export function startJobPod(
  pod: KubeObject,
  cluster: ClusterAccess,
  state: WorkloadState,
): RunningPod {
  const { namespace, name, container, logFile } = podBasics(pod, state);
  return launchPod({
    state,
    pod,
    cluster,
    logFile,
    startMain: (record) => {
      const env = resolveEnv(container, { pod, podIP: record.ip, cluster });
      const argv = [...(container.command ?? []), ...(container.args ?? [])].map((word: string) =>
        expandReferences(word, env),
      );
      if (argv.length === 0) {
        throw new Error(
          `job pod ${namespace}/${name} has no command: the sandbox runs commands only`,
        );
      }
      return state.supervisor.spawn({
        name: `${namespace}/${name}`,
        command: argv[0] as string,
        args: argv.slice(1),
        env,
        logFile,
        hostsFile: state.hosts.pathFor(namespace),
        cwd: state.podDir(namespace, name),
      });
    },
    probe: async () => true,
  });
}

/** Any other pod: a process that stays up until stopped, ready as soon as it runs. */
export function startIdlePod(
  pod: KubeObject,
  cluster: ClusterAccess,
  state: WorkloadState,
  probe: () => Promise<boolean> = async () => true,
  /** Where `kubectl logs` should look instead, when the pod stands for a process run elsewhere. */
  logFile = podBasics(pod, state).logFile,
): RunningPod {
  const { namespace, name } = podBasics(pod, state);
  return launchPod({
    state,
    pod,
    cluster,
    logFile,
    delayMs: killBackoff(state, namespace, name),
    startMain: () =>
      state.supervisor.spawn({
        name: `${namespace}/${name}`,
        command: 'sleep',
        args: ['infinity'],
        logFile: state.logFile(namespace, name),
      }),
    probe,
  });
}
